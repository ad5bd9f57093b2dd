#!/usr/bin/env bash
# Build the peer environments for the nuclei comparison (issue 8), each in its own virtualenv
# under benchmarks/peers/envs/ (git-ignored), never in the cellscape environment:
#   envs/stardist  StarDist 0.9.2 + csbdeep 0.8.2 + tensorflow-cpu 2.21.0 (Keras 3)
#   envs/cellpose  Cellpose 3.1.1.3 + the local CPU wheel of torch 2.13.0
#
#   bash benchmarks/peers/build.sh            # both (skips an env that already imports)
#   bash benchmarks/peers/build.sh stardist   # one
#   FORCE=1 bash benchmarks/peers/build.sh    # rebuild from scratch
#
# Pins: tensorflow-cpu 2.21.0 has a cp311 wheel (the mirror of this machine holds it) and works
# with csbdeep >= 0.8 / stardist >= 0.9, which support Keras 3; it takes numpy 2, so no numpy<2.
# Cellpose 3 needs numpy < 2.1 (its own requirement) and no torchvision (only cellpose 4 does).
# torch is constrained to 2.13.0 (the CPU wheel in /opt/wheels, found through pip's find-links):
# without it pip resolves a newer torch with several GB of CUDA packages.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
envs="$here/envs"
python="${PYTHON:-python3}"
mkdir -p "$envs"

constraints="$envs/constraints-cellpose.txt"
cat >"$constraints" <<'EOF'
torch==2.13.0
EOF

build() {
  local name="$1" check="$2"
  shift 2
  local env="$envs/$name"
  if [[ -z "${FORCE:-}" && -x "$env/bin/python" ]] && "$env/bin/python" -c "$check" 2>/dev/null; then
    echo "$name: already built ($env)"
    return
  fi
  rm -rf "$env"
  local t0=$SECONDS
  "$python" -m venv "$env"
  "$env/bin/pip" install --quiet "$@"
  "$env/bin/python" -c "$check"
  echo "$name: built in $((SECONDS - t0)) s, $(du -sh "$env" | cut -f1) ($env)"
}

want="${1:-all}"
if [[ "$want" == all || "$want" == stardist ]]; then
  build stardist "import stardist, csbdeep, tensorflow, tifffile" \
    "stardist==0.9.2" "csbdeep==0.8.2" "tensorflow-cpu==2.21.0" tifffile
fi
if [[ "$want" == all || "$want" == cellpose ]]; then
  build cellpose "import cellpose.models, torch, tifffile; assert torch.__version__.endswith('+cpu')" \
    -c "$constraints" "cellpose==3.1.1.3" "torch==2.13.0" tifffile
fi
