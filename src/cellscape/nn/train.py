"""One training loop for every torch model of cellscape.

It draws batches from a sampler, steps an Adam optimiser, evaluates a validation loss after each
epoch, keeps the weights with the best validation loss, and checkpoints every epoch so that an
interrupted training resumes where it stopped (``resume=True``). Checkpoints are safetensors
(weights) plus a torch optimiser state read back with ``weights_only=True``; nothing is pickled.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import io
from .infer import use_bfloat16

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class TrainConfig:
    """Settings of :func:`train_network`.

    Attributes
    ----------
    epochs, steps_per_epoch : int
        Training length: ``epochs * steps_per_epoch`` optimiser steps.
    learning_rate : float
        Adam learning rate at the start; it follows a cosine decay to 5% of it.
    weight_decay : float
        L2 regularisation (AdamW's decoupled weight decay).
    seed : int
        Seeds torch and the sampler's random generator.
    threads : int or None
        torch CPU threads (``None`` leaves torch's default).
    precision : {"float32", "bfloat16", "auto"}
        Arithmetic of the forward and backward passes: ``"bfloat16"`` runs them under CPU
        autocast with channels-last tensors (weights, optimiser and loss stay float32; about
        2x the steps per second on processors with native bfloat16), ``"auto"`` picks it only
        on such processors (:func:`cellscape.nn.infer.fast_bfloat16`) and on GPUs that have it.
    device : str
        Where the network trains: ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``), or ``"auto"`` (the
        GPU when torch sees one). The trained network is always handed back on the CPU.
    workers : int
        Processes that draw training batches beside the training loop (0: in the loop
        itself). A GPU steps faster than one CPU core crops and augments; on a CPU the
        workers take cores from the network, so 0 is right there.
    """

    epochs: int = 20
    steps_per_epoch: int = 100
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int | None = None
    precision: str = "float32"
    device: str = "cpu"
    workers: int = 0


@dataclass
class TrainHistory:
    """Losses per epoch, and where the best weights were."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int = -1

    def to_dict(self) -> dict:
        return asdict(self)


def state_to_numpy(net: torch.nn.Module) -> dict[str, np.ndarray]:
    """The network's parameters and buffers as numpy arrays (for safetensors)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def load_numpy_state(net: torch.nn.Module, arrays: dict[str, np.ndarray]) -> None:
    """Load arrays written by :func:`state_to_numpy` into ``net`` (names and shapes must match)."""
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})


def save_weights(net: torch.nn.Module, path: str | os.PathLike, half: bool = True) -> Path:
    """Write ``net``'s weights as safetensors; float32 tensors as float16 when ``half`` (bundled
    models stay a few MB; inference still runs in float32).

    A tensor with values beyond float16's range (65504; batch-norm running variances after
    long training can be) stays float32: cast, it would turn into infinities and break the
    saved network without a word.
    """
    arrays = state_to_numpy(net)
    if half:
        limit = float(np.finfo(np.float16).max)
        arrays = {
            k: v.astype(np.float16)
            if v.dtype == np.float32 and (v.size == 0 or float(np.abs(v).max()) <= limit)
            else v
            for k, v in arrays.items()
        }
    return io.write_safetensors(path, arrays)


def load_weights(net: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load weights written by :func:`save_weights` into ``net`` (float16 back to float32).

    Raises
    ------
    CellscapeError
        When the file's tensors do not fit the network (names or shapes differ).
    """
    from ..errors import CellscapeError

    arrays = io.read_safetensors(path)
    arrays = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in arrays.items()}
    try:
        load_numpy_state(net, arrays)
    except (RuntimeError, KeyError) as exc:
        raise CellscapeError(
            path, f"weights do not fit the network ({str(exc).splitlines()[0][:120]})"
        ) from None


def train_network(
    net: torch.nn.Module,
    sample_batch: Callable[[np.random.Generator], Batch],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    config: TrainConfig,
    *,
    val_batches: Sequence[Batch] = (),
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = True,
    on_epoch: Callable[[int, TrainHistory], None] | None = None,
) -> TrainHistory:
    """Train ``net`` in place and leave it holding the weights with the best validation loss.

    Parameters
    ----------
    net : torch.nn.Module
        The network (on CPU; it trains on ``config.device`` and comes back on the CPU).
    sample_batch : callable
        ``sample_batch(rng) -> (inputs, targets)``: one random training batch (CPU tensors).
        With ``config.workers`` it is called in worker processes, so it must be picklable
        or the processes forked (Linux).
    loss_fn : callable
        ``loss_fn(net_output, targets) -> scalar tensor``.
    config : TrainConfig
        Length, learning rate, regularisation, seed.
    val_batches : sequence of (inputs, targets)
        Fixed validation batches; without them the last epoch's weights are kept.
    checkpoint_dir : path, optional
        Where ``last.safetensors``, ``best.safetensors``, ``optimizer.pt`` and
        ``history.json`` are written after every epoch.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` when there is one.
    progress : bool
        Show a progress bar with the running loss.
    on_epoch : callable, optional
        Called as ``on_epoch(epoch, history)`` after each epoch (live loss read-outs).

    Returns
    -------
    TrainHistory
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    device = training_device(config.device)
    net.to(device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    optimiser = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    total_steps = config.epochs * config.steps_per_epoch

    def lr_at(step: int) -> float:
        progress_fraction = min(step / max(total_steps, 1), 1.0)
        return config.learning_rate * (
            0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress_fraction))
        )

    history = TrainHistory()
    best_state: dict[str, np.ndarray] | None = None
    start_epoch = 0
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if folder is not None and resume and (folder / "history.json").exists():
        saved = io.read_json(folder / "history.json")
        history = TrainHistory(**saved["history"])
        start_epoch = len(history.train_loss)
        load_numpy_state(net, io.read_safetensors(folder / "last.safetensors"))
        if (folder / "best.safetensors").exists():
            best_state = io.read_safetensors(folder / "best.safetensors")
        optimiser.load_state_dict(
            torch.load(folder / "optimizer.pt", weights_only=True, map_location=device)
        )
        # a different but reproducible random stream for the remaining epochs
        rng = np.random.default_rng([config.seed, start_epoch])
        torch.manual_seed(config.seed + start_epoch)

    low = use_bfloat16(config.precision, device.type)
    if low:
        # bfloat16 convolutions are fastest on NHWC tensors (oneDNN, cuDNN)
        net.to(memory_format=torch.channels_last)
    batches = _batch_stream(sample_batch, rng, config.workers, [config.seed, start_epoch])
    bar = _Progress(total_steps, start_epoch * config.steps_per_epoch, progress)
    try:
        for epoch in range(start_epoch, config.epochs):
            net.train()
            t0 = time.perf_counter()
            losses = []
            for i in range(config.steps_per_epoch):
                step = epoch * config.steps_per_epoch + i
                for group in optimiser.param_groups:
                    group["lr"] = lr_at(step)
                inputs, targets = next(batches)
                inputs, targets = inputs.to(device), targets.to(device)
                optimiser.zero_grad(set_to_none=True)
                if low:
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=low):
                    output = net(inputs)
                # the loss in float32 whatever the arithmetic of the network
                loss = loss_fn(output.float(), targets)
                loss.backward()
                optimiser.step()
                losses.append(float(loss.detach()))
                bar.advance(f"epoch {epoch + 1}/{config.epochs} loss {np.mean(losses[-20:]):.4f}")
            history.train_loss.append(float(np.mean(losses)))
            history.seconds.append(time.perf_counter() - t0)
            if val_batches:
                val = evaluate_loss(net, val_batches, loss_fn)
                history.val_loss.append(val)
                if history.best_epoch < 0 or val <= min(history.val_loss):
                    history.best_epoch = epoch
                    best_state = state_to_numpy(net)
            else:
                history.best_epoch = epoch
                best_state = None
            if folder is not None:
                _checkpoint(folder, net, optimiser, history, best_state)
            bar.log(
                f"epoch {epoch + 1}: train {history.train_loss[-1]:.4f}"
                + (f", validation {history.val_loss[-1]:.4f}" if val_batches else "")
                + f" ({history.seconds[-1]:.0f} s)"
            )
            if on_epoch is not None:
                on_epoch(epoch, history)
    finally:
        bar.close()
        batches.close()
    net.to("cpu", memory_format=torch.contiguous_format)
    if best_state is not None:
        load_numpy_state(net, best_state)
    net.eval()
    return history


def training_device(name: str) -> torch.device:
    """The torch device for ``name`` ("cpu", "cuda", "cuda:N" or "auto": the GPU when torch
    sees one), with a clear error when a GPU is asked for and there is none."""
    from ..errors import CellscapeError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CellscapeError(None, f"device {name!r} asked for, but torch sees no GPU here")
    return device


class _SampleStream(torch.utils.data.IterableDataset):
    """Endless batches of ``sample_batch``, each worker process with its own random stream."""

    def __init__(self, sample_batch, seed):
        self.sample_batch = sample_batch
        self.seed = seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([*self.seed, info.id if info else 0])
        while True:
            yield self.sample_batch(rng)


def _batch_stream(sample_batch, rng: np.random.Generator, workers: int, seed: list[int]):
    """An iterator of training batches: drawn in the loop with ``rng`` (``workers == 0``: the
    exact stream of earlier versions), or by ``workers`` processes ahead of the loop."""

    def serial():
        while True:
            yield sample_batch(rng)

    def from_workers():
        loader = torch.utils.data.DataLoader(
            _SampleStream(sample_batch, seed), batch_size=None, num_workers=workers
        )
        it = iter(loader)
        try:
            while True:
                yield next(it)
        finally:
            del it  # the last reference: its workers shut down

    return from_workers() if workers > 0 else serial()


def evaluate_loss(net: torch.nn.Module, batches: Sequence[Batch], loss_fn) -> float:
    """Mean loss of ``net`` (in eval mode) over fixed batches."""
    device = next(net.parameters()).device
    net.eval()
    with torch.inference_mode():
        values = [float(loss_fn(net(x.to(device)), y.to(device))) for x, y in batches]
    net.train()
    return float(np.mean(values))


def _checkpoint(folder: Path, net, optimiser, history: TrainHistory, best_state) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    io.write_safetensors(folder / "last.safetensors", state_to_numpy(net))
    if best_state is not None:
        io.write_safetensors(folder / "best.safetensors", best_state)
    with io.atomic_path(folder / "optimizer.pt") as tmp:
        torch.save(optimiser.state_dict(), tmp)
    # history last: its presence marks a complete checkpoint
    io.write_json(folder / "history.json", {"history": history.to_dict()})


class _Progress:
    """A rich progress bar that degrades to nothing when disabled."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.enabled = enabled
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeRemainingColumn(),
            )
            self.task = self.progress.add_task("training", total=total, completed=done)
            self.progress.start()

    def advance(self, description: str) -> None:
        if self.enabled:
            self.progress.update(self.task, advance=1, description=description)

    def log(self, line: str) -> None:
        if self.enabled:
            self.progress.console.print(line)

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()
