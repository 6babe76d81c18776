"""Every setting of the image pipeline in one dataclass, with the two profiles beside it.

``paper`` is the published setup (Robinson et al. 2021, released image code): ResNet-50,
batch 256, Adam 1e-3 / wd 1e-6, temperature 0.5, 400 epochs, kNN k=200, 100-epoch
linear probe. ``quick`` is sized from measured CPU speed (see the note above ``QUICK``) so that
simclr, debiased and hard finish pretraining and evaluation in about 30 minutes on
2 CPU cores, and still learn well above a random encoder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from common.errors import UserError
from common.objectives import Objective
from common.settings import check_config, option


@dataclass
class ImageConfig:
    """Data, encoder, pretraining, evaluation and runtime settings (defaults = ``paper``)."""

    dataset: str = option("cifar10-jpeg", "data set", choices=("cifar10-jpeg", "cifar10", "cifar100", "stl10"))
    train_per_class: int = option(0, "class-balanced subset of the labelled train split per class (0 = all)", low=0)
    arch: str = option("resnet50", "encoder (CIFAR stem)", choices=("resnet18", "resnet50"))
    width: int = option(64, "channels of the first stage; 64 is the standard network", low=1)
    epochs: int = option(400, "pretraining epochs", low=1)
    batch_size: int = option(256, "pretraining batch (images; two views each), global over all ranks", low=2)
    lr: float = option(1e-3, "Adam learning rate", above=0)
    weight_decay: float = option(1e-6, "Adam weight decay", low=0)
    temperature: float = option(0.5, "contrastive temperature", above=0)
    crop_size: int = option(32, "side of the random resized crops used for pretraining", low=1)
    knn_k: int = option(200, "neighbours of the weighted kNN monitor", low=1)
    knn_temperature: float = option(0.5, "temperature of the kNN neighbour weights exp(cos/t)", above=0)
    linear_epochs: int = option(100, "epochs of the linear probe on frozen encoder features", low=1)
    linear_lr: float = option(1e-3, "Adam learning rate of the linear probe", above=0)
    linear_weight_decay: float = option(1e-6, "Adam weight decay of the linear probe", low=0)
    linear_batch_size: int = option(256, "batch of the linear probe", low=1)
    eval_batch_size: int = option(512, "batch for computing features", low=1)
    seed: int = option(0, "seed of the initialisation, subset, shuffling and augmentation")
    device: str = option("auto", "cpu, cuda, cuda:N, or auto (cuda when available)")
    augment: str = option("auto", "where the two views are made: loader (batches augmented on the CPU by "
                          "image.data.SimCLRAugment, then copied to --device), device (the uint8 images kept on --device, "
                          "views made there by image.gpu_augment, torchvision's semantics), auto (device on CUDA, else "
                          "loader)", choices=("auto", "loader", "device"))
    bf16: bool = option(False, "bfloat16 autocast for the forward pass (GPU)")
    channels_last: bool = option(False, "channels-last memory format (GPU)")
    compile: bool = option(False, "torch.compile the model")
    sync_bn: bool = option(False, "SyncBatchNorm across ranks under torchrun")
    threads: int = option(0, "torch CPU threads (0 = torch's default)", low=0)


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
# resumed with different values. Like device and bf16, augment changes the random draws (and the loader's
# approximations of torchvision: image.data.SimCLRAugment) but not the protocol, so it is no part of a run's identity.
RUNTIME_FIELDS = ("device", "augment", "bf16", "channels_last", "compile", "threads", "eval_batch_size")


#: The paper's three image runs; any registered objective runs by its spec (``--objective``).
DEFAULT_OBJECTIVES = ("simclr", "debiased", "hard")
#: Run-folder names of registry families (SimCLR's loss is NT-Xent); folders written before the registry used it.
FOLDER_ALIASES = {"ntxent": "simclr"}


def objective_label(objective: Objective, anneal_beta: bool = False, aliases: dict[str, str] | None = None) -> str:
    """Display name of a trained run: the registry's label, ``annealed`` when beta followed the schedule.

    The one place the anneal suffix is written, so pages, logs and run folders never disagree about it.
    """
    return objective.label(aliases) + (" annealed" if anneal_beta else "")


def objective_tag(objective: Objective, anneal_beta: bool = False) -> str:
    """Run-folder name, also stored as a record's ``method`` (older records' identity reads it); never displayed,
    pages and logs show :func:`objective_label`: ``simclr``, ``hard``, ``hard-beta=2``, ``hard-annealed``."""
    return objective_label(objective, anneal_beta, FOLDER_ALIASES).replace(" ", "-")


def check_anneal(objective: Objective, anneal_beta: bool) -> None:
    """``--anneal-beta`` only for objectives that have a beta to anneal."""
    if anneal_beta and "beta" not in dict(objective.params):
        raise UserError(f"--anneal-beta anneals beta, and objective {objective} has no beta parameter")


def validate(cfg: ImageConfig) -> ImageConfig:
    """Raise ``UserError`` naming the first setting out of range (ranges beside the defaults)."""
    return check_config(cfg)
