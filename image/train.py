"""SimCLR-style pretraining with the hard-negative loss; one process, or DDP under torchrun.

Resuming is exact at epoch boundaries without saving any random-number state: the
shuffling order and the augmentation generator are re-seeded at every epoch from
(seed, epoch, rank), so epoch e draws the same numbers whether or not the run stopped
before it. The checkpoint holds the model, the optimiser, the epoch and the history.

The views are made where ``--augment`` says (:func:`augment_path`): on the CPU and copied to the device
(``loader``), or from images kept on the device (``device``, so no CPU work stands between GPU steps). Either
path resumes the other's checkpoint: the epoch's generator is seeded the same way on either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from common.checkpoint import save_checkpoint
from common.errors import UserError
from common.losses import annealed_beta
from common.objectives import Objective, build, check_negatives
from common.resume import resume_checkpoint
from common.seed import seed_everything
from common.settings import check_device
from image.config import ImageConfig, check_anneal
from image.data import ImageData, SimCLRAugment
from image.gpu_augment import AugmentConfig, two_views
from image.identity import run_settings
from image.model import SimCLRModel

CHECKPOINT = "checkpoint.pt"


def resolve_device(name: str) -> torch.device:
    """``auto`` is the local GPU when there is one (the rank's own GPU under torchrun)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and "LOCAL_RANK" in os.environ:
        name = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return torch.device(check_device(name))


def memory_estimate(cfg: ImageConfig, world: int = 1) -> dict[str, int]:
    """Bytes one rank needs to pretrain and to compute features, from the model's layer outputs.

    One view's activations are counted with forward hooks on every leaf layer (autograd keeps
    about that much per image until the backward pass); the loss holds a few (2B)^2 matrices
    of the gathered batch. A lower bound: allocator slack and the data set come on top.
    """
    model = SimCLRModel(cfg.arch, cfg.width).eval()
    sizes: list[int] = []

    def count(_module: nn.Module, _inputs: Any, out: Any) -> None:
        sizes.append((out[0] if isinstance(out, tuple) else out).numel())

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]

    def per_image(side: int) -> tuple[int, int]:
        sizes.clear()
        with torch.no_grad():
            model(torch.zeros(1, 3, side, side))
        return sum(sizes), max(sizes)

    train_total, _ = per_image(cfg.crop_size)
    _, eval_largest = per_image(96 if cfg.dataset == "stl10" else 32)
    for hook in hooks:
        hook.remove()
    views = 2 * max(cfg.batch_size // world, 1)
    params = sum(p.numel() for p in model.parameters())
    return {
        "pretraining": 4 * (views * train_total + 4 * (2 * cfg.batch_size) ** 2 + 4 * views * 3 * cfg.crop_size**2 + 4 * params),
        "features": 4 * (2 * cfg.eval_batch_size * eval_largest + params),
    }


def _available_bytes(device: torch.device) -> int | None:
    """Free memory of ``device`` now (CUDA: free GPU memory; CPU: the kernel's MemAvailable), None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    with contextlib.suppress(OSError, StopIteration, ValueError), open("/proc/meminfo") as f:
        return 1024 * int(next(line.split()[1] for line in f if line.startswith("MemAvailable:")))
    return None


def _size(count: float) -> str:
    units = ("bytes", "KB", "MB", "GB", "TB", "PB")
    power = min(int(math.log10(max(count, 1)) // 3), len(units) - 1)
    return f"{count / 1000**power:.1f} {units[power]}"


def check_memory(cfg: ImageConfig, device: torch.device) -> None:
    """Refuse, before anything is allocated, a run whose estimate exceeds the free memory of ``device``."""
    available = _available_bytes(device)
    if available is None:
        return
    lower = {"pretraining": "--batch-size (or --crop-size, --width)", "features": "--eval-batch-size"}
    for phase, need in memory_estimate(cfg, int(os.environ.get("WORLD_SIZE", "1"))).items():
        if need > available:
            raise UserError(f"{phase} at --batch-size {cfg.batch_size} / --eval-batch-size {cfg.eval_batch_size} needs "
                            f"about {_size(need)} on {device}, but only {_size(available)} is free; lower {lower[phase]}")


@contextlib.contextmanager
def distributed_from_env(device: torch.device) -> Iterator[tuple[int, int]]:
    """Join the process group torchrun describes (NCCL on GPU, gloo on CPU); yields (rank, world).

    One rank under torchrun joins too, so a single-GPU ``torchrun`` runs the NCCL/DDP path itself.
    """
    if "WORLD_SIZE" not in os.environ or "MASTER_ADDR" not in os.environ:
        yield 0, 1
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        dist.destroy_process_group()


def build_model(cfg: ImageConfig) -> SimCLRModel:
    """The model at its seeded initialisation (the random-init baseline uses the same call)."""
    seed_everything(cfg.seed)
    return SimCLRModel(cfg.arch, cfg.width)


def prepare_model(cfg: ImageConfig, device: torch.device) -> SimCLRModel:
    """Seeded model on ``device``; BatchNorm becomes SyncBatchNorm when asked for under torchrun.

    The conversion keeps parameter names, so checkpoints load into a plain model.
    """
    if cfg.channels_last and device.type == "cpu" and cfg.width < 8:
        # Measured here (AVX2 CPU): the weight gradient of a channels-last 1x1 stride-2 convolution with fewer
        # than 8 input channels aborts or hangs the process (oneDNN issue 6035: it writes past a workspace).
        raise UserError(f"--channels-last on CPU needs --width >= 8 (got {cfg.width}): oneDNN's 1x1 stride-2 "
                        "convolution backward corrupts memory below 8 input channels; drop --channels-last")
    model = build_model(cfg)
    if cfg.sync_bn and dist.is_available() and dist.is_initialized():
        if device.type != "cuda":
            raise UserError("--sync-bn needs CUDA devices (SyncBatchNorm has no CPU implementation)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if cfg.channels_last else model


def wrap_for_training(model: nn.Module, cfg: ImageConfig, device: torch.device) -> nn.Module:
    """DDP when a process group is up, then ``torch.compile`` when asked; parameters stay shared."""
    if dist.is_available() and dist.is_initialized():
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(model) if cfg.compile else model


def train_step(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    optimizer: torch.optim.Optimizer,
    view1: Tensor,
    view2: Tensor,
    *,
    bf16: bool = False,
) -> Tensor:
    """One optimiser step on a batch of view pairs; returns the detached loss.

    Both views go through the network as one batch (one forward, so BatchNorm sees both
    views, as in the original SimCLR); the loss core computes in float32 at least.
    """
    with torch.autocast(view1.device.type, dtype=torch.bfloat16, enabled=bf16):
        _, projection = model(torch.cat([view1, view2]))
    z1, z2 = projection.chunk(2)
    loss = loss_fn(z1, z2)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch) * 1_009 + rank


def augment_path(cfg: ImageConfig, device: torch.device) -> str:
    """``loader`` or ``device``: where the two views are made; ``auto`` keeps a GPU fed without CPU work."""
    if cfg.augment != "auto":
        return cfg.augment
    return "device" if device.type == "cuda" else "loader"


ViewMaker = Callable[[Tensor, torch.Generator], tuple[Tensor, Tensor]]


def view_maker(cfg: ImageConfig, path: str) -> ViewMaker:
    """The two views of a uint8 batch, drawn from a generator where the batch is.

    ``loader``: image.data.SimCLRAugment, one view after the other (the draws every CPU run so far made).
    ``device``: image.gpu_augment's torchvision semantics, both views as one batch of 2B (fewer kernel launches).
    """
    if path == "device":
        config = AugmentConfig(size=cfg.crop_size)
        return lambda batch, generator: two_views(batch, generator, config)
    augment = SimCLRAugment(cfg.crop_size)
    return lambda batch, generator: (augment(batch, generator), augment(batch, generator))


def pretrain(
    cfg: ImageConfig,
    objective: Objective,
    data: ImageData,
    run_dir: Path,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    anneal_beta: bool = False,
    eval_at: tuple[int, ...] = (),
    score: Callable[[nn.Module], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Pretrain (or continue) in ``run_dir``; returns the last checkpoint dict.

    A checkpoint is written atomically after every epoch. With ``resume`` an existing
    checkpoint is continued (its settings must match, runtime flags aside: ``image.identity.run_settings``, the same
    identity the records use); without it an existing checkpoint is an error, so a finished run is never
    overwritten by accident. ``stop_after`` returns after that epoch, to split a long run over several jobs.
    ``anneal_beta`` steps the objective's beta down to 0 (the released code's "down" schedule).

    After each epoch of ``eval_at`` before the last, rank 0 also scores the encoder (in eval mode) with ``score`` and
    keeps the result in that epoch's history entry (``scored``), so a resumed run still has it. Scoring draws no random
    numbers of the training's (shuffling and augmentation are re-seeded every epoch), so the final model is the same
    with or without it.
    """
    check_anneal(objective, anneal_beta)
    if eval_at and score is None:
        raise ValueError("eval_at needs a score function")
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    path = run_dir / CHECKPOINT
    config = {**dataclasses.asdict(cfg), "objective": objective.to_dict(), "anneal_beta": anneal_beta,
              **({"eval_at": sorted(eval_at)} if eval_at else {})}
    if path.exists() and not resume:
        raise UserError(f"{path} exists; pass --resume to continue it, or choose another --out-dir")
    state = resume_checkpoint(path, run_settings(config), upgrade=run_settings,
                              required=("model", "optimizer", "epoch", "history"))
    with distributed_from_env(device) as (rank, world):
        if cfg.batch_size % world:
            raise UserError(f"batch_size {cfg.batch_size} is not divisible by the {world} ranks")
        model = prepare_model(cfg, device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        history: list[dict[str, float]] = []
        start = 1
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            history, start = list(state["history"]), int(state["epoch"]) + 1
        trained = wrap_for_training(model, cfg, device)
        loss_fn = build(objective, temperature=cfg.temperature, gather_distributed=world > 1)
        # The images live where the views are made: on --device, or in CPU memory for the loader path.
        augmented_on = augment_path(cfg, device)
        images = data.pretrain.to(device) if augmented_on == "device" else data.pretrain
        make_views = view_maker(cfg, augmented_on)
        generator = torch.Generator(device=images.device)
        memory_format = torch.channels_last if cfg.channels_last else torch.preserve_format
        local_batch = cfg.batch_size // world
        steps = images.shape[0] // cfg.batch_size
        if steps == 0:
            raise UserError(f"batch_size {cfg.batch_size} is larger than the {images.shape[0]} pretraining images")
        try:  # each anchor's negatives: both views of the global batch but itself and its partner
            check_negatives(objective, [2 * cfg.batch_size - 2], temperature=cfg.temperature)
        except ValueError as err:
            raise UserError(str(err)) from None
        last = cfg.epochs if stop_after is None else min(stop_after, cfg.epochs)
        for epoch in range(start, last + 1):
            if anneal_beta:
                loss_fn.set(beta=annealed_beta(objective["beta"], epoch, cfg.epochs))
            beta = dict(loss_fn.objective.params).get("beta")
            order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch, 0)))
            order = order.to(images.device)
            generator.manual_seed(_epoch_seed(cfg.seed, epoch, rank + 1))
            trained.train()
            started = time.perf_counter()
            total = torch.zeros((), device=device)
            bar = _progress(steps, f"epoch {epoch}/{cfg.epochs}", enabled=progress and rank == 0)
            for step in range(steps):
                first = step * cfg.batch_size + rank * local_batch
                view1, view2 = make_views(images[order[first : first + local_batch]], generator)
                view1 = view1.to(device, non_blocking=True, memory_format=memory_format)
                view2 = view2.to(device, non_blocking=True, memory_format=memory_format)
                total += train_step(trained, loss_fn, optimizer, view1, view2, bf16=cfg.bf16)
                if bar is not None and (step % 10 == 9 or step == steps - 1):
                    rate = (step + 1) * cfg.batch_size / (time.perf_counter() - started)
                    bar.set_postfix(loss=f"{total.item() / (step + 1):.4f}", img_s=f"{rate:.0f}")
                    bar.update(step + 1 - bar.n)
            if bar is not None:
                bar.close()
            seconds = time.perf_counter() - started
            history.append(
                {"epoch": epoch, "loss": total.item() / steps, "beta": beta, "seconds": seconds,
                 "images_per_s": steps * cfg.batch_size / seconds, "peak_memory_mb": _peak_memory_mb(device),
                 "augment": augmented_on}  # per epoch: a resumed run may have switched paths
            )
            if score is not None and epoch in eval_at and epoch < cfg.epochs and rank == 0:
                model.eval()  # BatchNorm statistics stay the training's (the next epoch sets train mode again)
                history[-1]["scored"] = score(model.encoder)
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                     "config": config, "history": history}
            if rank == 0:
                save_checkpoint(path, state)  # one line per epoch, bar or not: what a log of the run keeps
                print(f"epoch {epoch}: loss {history[-1]['loss']:.4f}, {history[-1]['images_per_s']:.0f} images/s "
                      f"({augmented_on} augmentation), {seconds:.1f} s, {loss_fn.objective.label()}", flush=True)
            if world > 1:
                dist.barrier()
    return state


def _peak_memory_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def _progress(total: int, description: str, *, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="step", leave=False, dynamic_ncols=True)
