"""Every setting of the image pipeline in one dataclass, with the two profiles beside it.

``paper`` is the published setup (Robinson et al. 2021, released image code): ResNet-50,
batch 256, Adam 1e-3 / wd 1e-6, temperature 0.5, 400 epochs, kNN k=200, 100-epoch
linear probe. ``quick`` is sized from measured CPU speed (see the note above ``QUICK``) so that
simclr, debiased and hard finish pretraining and evaluation in about 30 minutes on
2 CPU cores, and still learn well above a random encoder.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from common.cli import UserError
from common.objectives import Objective


def _opt(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class ImageConfig:
    """Data, encoder, pretraining, evaluation and runtime settings (defaults = ``paper``)."""

    dataset: str = _opt("cifar10-jpeg", "data set", choices=("cifar10-jpeg", "cifar10", "cifar100", "stl10"))
    train_per_class: int = _opt(0, "class-balanced subset of the labelled train split per class (0 = all)")
    arch: str = _opt("resnet50", "encoder (CIFAR stem)", choices=("resnet18", "resnet50"))
    width: int = _opt(64, "channels of the first stage; 64 is the standard network")
    epochs: int = _opt(400, "pretraining epochs")
    batch_size: int = _opt(256, "pretraining batch (images; two views each), global over all ranks")
    lr: float = _opt(1e-3, "Adam learning rate")
    weight_decay: float = _opt(1e-6, "Adam weight decay")
    temperature: float = _opt(0.5, "contrastive temperature")
    crop_size: int = _opt(32, "side of the random resized crops used for pretraining")
    knn_k: int = _opt(200, "neighbours of the weighted kNN monitor")
    knn_temperature: float = _opt(0.5, "temperature of the kNN neighbour weights exp(cos/t)")
    linear_epochs: int = _opt(100, "epochs of the linear probe on frozen encoder features")
    linear_lr: float = _opt(1e-3, "Adam learning rate of the linear probe")
    linear_weight_decay: float = _opt(1e-6, "Adam weight decay of the linear probe")
    linear_batch_size: int = _opt(256, "batch of the linear probe")
    eval_batch_size: int = _opt(512, "batch for computing features")
    seed: int = _opt(0, "seed of the initialisation, subset, shuffling and augmentation")
    device: str = _opt("auto", "cpu, cuda, cuda:N, or auto (cuda when available)")
    bf16: bool = _opt(False, "bfloat16 autocast for the forward pass (GPU)")
    channels_last: bool = _opt(False, "channels-last memory format (GPU)")
    compile: bool = _opt(False, "torch.compile the model")
    sync_bn: bool = _opt(False, "SyncBatchNorm across ranks under torchrun")
    threads: int = _opt(0, "torch CPU threads (0 = torch's default)")


PAPER = ImageConfig()
# 10k images x 8 epochs at batch 128 = 80k images per method. Measured (tables/image.md): 40-90 images/s
# on one thread of a 2-core AMD EPYC beside other jobs, 275-300 images/s on both threads of a quiet
# 2-core AVX-512 Xeon, where the whole run (baseline + three methods + evaluation) took about 15 minutes.
QUICK = dataclasses.replace(
    PAPER,
    arch="resnet18",
    width=16,
    train_per_class=1000,
    epochs=8,
    batch_size=128,
    linear_epochs=30,
    device="cpu",
)
PROFILES = {"paper": PAPER, "quick": QUICK}

# Fields that change how fast a run goes but not what it computes: a checkpoint may be
# resumed with different values.
RUNTIME_FIELDS = ("device", "bf16", "channels_last", "compile", "threads", "eval_batch_size")


#: The paper's three image runs; any registered objective runs by its spec (``--objective``).
DEFAULT_OBJECTIVES = ("simclr", "debiased", "hard")
#: Display names of registry families in image tables and run folders (SimCLR's loss is NT-Xent).
ALIASES = {"ntxent": "simclr"}


def objective_tag(objective: Objective, anneal_beta: bool = False) -> str:
    """Run folder and table name: ``simclr``, ``hard``, ``hard-beta=2``, ``hard-anneal``."""
    return objective.label(ALIASES).replace(" ", "-") + ("-anneal" if anneal_beta else "")


def check_anneal(objective: Objective, anneal_beta: bool) -> None:
    if anneal_beta and "beta" not in dict(objective.params):
        raise UserError(f"--anneal-beta anneals beta, and objective {objective} has no beta parameter")


def validate(cfg: ImageConfig) -> ImageConfig:
    """Raise ``UserError`` naming the first setting out of range."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if "choices" in f.metadata and value not in f.metadata["choices"]:
            raise UserError(f"{f.name} must be one of {', '.join(f.metadata['choices'])}, got {value!r}")
    positive = ("width", "epochs", "batch_size", "crop_size", "knn_k", "linear_epochs", "linear_batch_size", "eval_batch_size")
    for name in positive:
        if getattr(cfg, name) < 1:
            raise UserError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    for name in ("train_per_class", "threads", "weight_decay", "linear_weight_decay"):
        if getattr(cfg, name) < 0:
            raise UserError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    for name in ("lr", "linear_lr", "knn_temperature"):
        if not getattr(cfg, name) > 0:
            raise UserError(f"{name} must be > 0, got {getattr(cfg, name)}")
    if cfg.batch_size < 2:
        raise UserError(f"batch_size must be >= 2 for negatives, got {cfg.batch_size}")
    if not (cfg.temperature > 0 and math.isfinite(cfg.temperature)):
        raise UserError(f"temperature must be a finite number > 0, got {cfg.temperature}")
    return cfg
