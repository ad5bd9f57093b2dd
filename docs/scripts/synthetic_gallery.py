"""Draw docs/images/synthetic_gallery.png: one panel per generator of cellscape.synthetic.

Usage: python docs/scripts/synthetic_gallery.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cellscape import synthetic  # noqa: E402
from cellscape.viz import outline_overlay  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "images" / "synthetic_gallery.png"


def main() -> None:
    nuc = synthetic.nuclei(shape=(256, 256), seed=1)
    cells = synthetic.whole_cells(shape=(256, 256), seed=1)
    bact = synthetic.bacteria_phase(shape=(256, 256), seed=1)
    stack = synthetic.brightfield_zstack(shape=(192, 192), kind="mixed", seed=1)
    movie = synthetic.timelapse(shape=(128, 128), n_frames=20, seed=1)
    f = stack.focus_index
    panels = [
        ("nuclei + labels", outline_overlay(nuc.image, nuc.labels)),
        ("whole cells (cytoplasm marker)", outline_overlay(cells.image, cells.labels)),
        (
            "nuclear channel of the same cells",
            outline_overlay(cells.nuclear_image, cells.nuclei_labels),
        ),
        ("phase-contrast bacteria", outline_overlay(bact.image, bact.labels)),
        (f"bright field, z = {stack.z[f - 10]:+.1f} µm", stack.stack[f - 10]),
        (f"bright field, z = {stack.z[f]:+.1f} µm (focus)", stack.stack[f]),
        (f"bright field, z = {stack.z[f + 10]:+.1f} µm", stack.stack[f + 10]),
        ("z-stack classes (bacteria / yeast)", stack.type_classes),
        ("time-lapse, frame 0", outline_overlay(movie.images[0], movie.labels[0])),
        ("time-lapse, last frame", outline_overlay(movie.images[-1], movie.labels[-1])),
        ("reporter channel, last frame", movie.reporter_images[-1]),
        ("x-z section of the z-stack", stack.stack[:, stack.stack.shape[1] // 2, :]),
    ]
    fig, axes = plt.subplots(3, 4, figsize=(16, 12.5))
    for ax, (title, img) in zip(axes.ravel(), panels, strict=True):
        ax.imshow(
            img,
            cmap="gray" if np.ndim(img) == 2 else None,
            interpolation="nearest",
            aspect="auto" if "x-z" in title else "equal",
        )
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle("cellscape.synthetic: simulated microscopy with exact ground truth (seed 1)")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=48)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
