"""Training: the loss goes down, resuming is bit-identical (across the two augmentation paths too), the paths' views
agree in distribution, DDP on 2 gloo ranks equals 1 process."""

from __future__ import annotations

import dataclasses
import math
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from common.errors import UserError
from common.losses import HardNegativeLoss
from common.objectives import parse_objective
from image.config import QUICK
from image.data import ImageData, SimCLRAugment, normalize
from image.model import SimCLRModel
from image.train import (
    CHECKPOINT,
    build_model,
    distributed_from_env,
    prepare_model,
    pretrain,
    train_step,
    view_maker,
    wrap_for_training,
)

TINY = dataclasses.replace(QUICK, width=4, epochs=2, batch_size=8, train_per_class=0, threads=0)
HARD = parse_objective("hard:tau_plus=0.1,beta=1")


def _tiny_data(n: int = 20) -> ImageData:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=generator)
    labels = torch.arange(n) % 2
    return ImageData("cifar10-jpeg", images, images, labels, images[:4], labels[:4], num_classes=2)


@pytest.mark.parametrize("path", ["loader", "device"])
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(path: str) -> None:
    torch.manual_seed(0)
    model = SimCLRModel("resnet18", 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = HardNegativeLoss(temperature=0.5, tau_plus=0.1, beta=1.0)
    images = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8)
    make_views = view_maker(dataclasses.replace(TINY, crop_size=16), path)
    view1, view2 = make_views(images, torch.Generator().manual_seed(0))
    losses = [train_step(model, loss_fn, optimizer, view1, view2).item() for _ in range(6)]
    assert losses[-1] < losses[0] - 0.05, losses


def test_both_augmentation_paths_make_views_of_one_shape_and_distribution() -> None:
    """Float32 (B, 3, crop, crop) views whose per-channel mean and std agree between the paths within the spread of
    the random draws (the means move about 0.05 between seeds at 512 images) and with the plain normalised images'
    mean; resampling a crop smooths pixel noise in both (std about 1.05 against 1.43 un-augmented)."""
    images = torch.randint(0, 256, (512, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    cfg = dataclasses.replace(TINY, crop_size=24)
    views = {path: view_maker(cfg, path)(images, torch.Generator().manual_seed(0)) for path in ("loader", "device")}
    for view1, view2 in views.values():
        assert view1.shape == view2.shape == (512, 3, 24, 24) and view1.dtype == view2.dtype == torch.float32
        assert (view1 - view2).abs().flatten(1).amax(dim=1).min() > 0.1  # every image's two views differ
    loader, device = (torch.cat(views[path]) for path in ("loader", "device"))
    plain = normalize(images)
    for channels in (loader, device):
        torch.testing.assert_close(channels.mean(dim=(0, 2, 3)), plain.mean(dim=(0, 2, 3)), atol=0.1, rtol=0)
        assert (channels.std(dim=(0, 2, 3)) < 0.85 * plain.std(dim=(0, 2, 3))).all()
    torch.testing.assert_close(device.mean(dim=(0, 2, 3)), loader.mean(dim=(0, 2, 3)), atol=0.1, rtol=0)
    torch.testing.assert_close(device.std(dim=(0, 2, 3)), loader.std(dim=(0, 2, 3)), atol=0, rtol=0.05)


def test_channels_last_and_bf16_steps_match_float32() -> None:
    """The GPU options run on CPU too. channels_last changes only the memory layout: same loss and gradients up
    to float32 reordering. bf16 autocast keeps 8 mantissa bits: the loss agrees to 2% and stays float32, and the
    gradient still points the same way (a tiny width-8 net amplifies rounding; a broken path gives cosine ~0)."""
    images = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    augment = SimCLRAugment(16)
    views = augment(images, torch.Generator().manual_seed(0)), augment(images, torch.Generator().manual_seed(1))

    def step(channels_last: bool, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        model, (view1, view2) = SimCLRModel("resnet18", 8), views
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            view1, view2 = (v.contiguous(memory_format=torch.channels_last) for v in views)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # no update: gradients of the same weights
        loss = train_step(model, HardNegativeLoss(temperature=0.5, tau_plus=0.1, beta=1.0), optimizer, view1, view2, bf16=bf16)
        return loss, torch.cat([p.grad.flatten() for p in model.parameters()])

    def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
        return torch.nn.functional.cosine_similarity(a, b, dim=0).item()

    loss32, grad32 = step(False, False)
    loss_cl, grad_cl = step(True, False)
    torch.testing.assert_close(loss_cl, loss32, rtol=1e-5, atol=0.0)
    assert cosine(grad_cl, grad32) > 0.999
    loss16, grad16 = step(True, True)
    assert loss16.dtype == torch.float32 and torch.isfinite(grad16).all()
    torch.testing.assert_close(loss16, loss32, rtol=2e-2, atol=0.0)
    assert cosine(grad16, grad32) > 0.9


def test_channels_last_on_cpu_refuses_widths_that_crash_onednn() -> None:
    with pytest.raises(UserError, match="width >= 8"):
        prepare_model(dataclasses.replace(TINY, channels_last=True), torch.device("cpu"))
    assert prepare_model(dataclasses.replace(TINY, width=8, channels_last=True), torch.device("cpu")) is not None


def test_resume_continues_bit_identically_and_scoring_along_the_way_changes_nothing(tmp_path: Path) -> None:
    """The split run also scores after epoch 1 (``eval_at``): the score survives the resume, and neither the
    scoring (which draws global random numbers and runs the encoder) nor the split changes the trained weights."""
    data = _tiny_data()
    calls: list[torch.nn.Module] = []

    def score(encoder: torch.nn.Module) -> dict[str, float]:
        calls.append(encoder)
        return {"linear_top1": encoder(torch.rand(2, 3, 16, 16)).sum().item()}

    straight = pretrain(TINY, HARD, data, tmp_path / "straight", progress=False)
    first = pretrain(TINY, HARD, data, tmp_path / "split", stop_after=1, progress=False, eval_at=(1,), score=score)
    assert first["epoch"] == 1 and (tmp_path / "split" / CHECKPOINT).is_file()
    resumed = pretrain(TINY, HARD, data, tmp_path / "split", resume=True, progress=False, eval_at=(1,), score=score)
    assert resumed["epoch"] == straight["epoch"] == 2
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert straight["history"][1]["loss"] == resumed["history"][1]["loss"]
    # scored once, after epoch 1 (the last epoch is the caller's final evaluation), on the encoder alone
    assert len(calls) == 1 and not isinstance(calls[0], SimCLRModel) and "scored" not in resumed["history"][1]
    assert set(resumed["history"][0]["scored"]) == {"linear_top1"} and "scored" not in straight["history"][0]
    # And the first epoch really changed the model, so the comparison is not vacuous.
    initial = build_model(TINY).state_dict()
    assert not torch.equal(initial["encoder.stem.0.weight"], straight["model"]["encoder.stem.0.weight"])


def test_device_augmentation_trains_and_reproduces_itself_bit_for_bit(tmp_path: Path) -> None:
    """Two runs with ``augment=device`` and one run split after epoch 1 end with the same weights; ``auto`` on a
    CPU is the loader path, whose different draws give other weights (so the comparison is not vacuous)."""
    data, on_device = _tiny_data(), dataclasses.replace(TINY, augment="device")
    first = pretrain(on_device, HARD, data, tmp_path / "first", progress=False)
    again = pretrain(on_device, HARD, data, tmp_path / "again", progress=False)
    pretrain(on_device, HARD, data, tmp_path / "split", stop_after=1, progress=False)
    split = pretrain(on_device, HARD, data, tmp_path / "split", resume=True, progress=False)
    for name, tensor in first["model"].items():
        assert torch.equal(tensor, again["model"][name]) and torch.equal(tensor, split["model"][name]), name
    assert [h["augment"] for h in first["history"]] == ["device", "device"]
    assert all(math.isfinite(h["loss"]) and h["images_per_s"] > 0 for h in first["history"])
    loader = pretrain(TINY, HARD, data, tmp_path / "loader", progress=False)
    assert [h["augment"] for h in loader["history"]] == ["loader", "loader"]
    assert not torch.equal(loader["model"]["encoder.stem.0.weight"], first["model"]["encoder.stem.0.weight"])


@pytest.mark.parametrize(("before", "after"), [("loader", "device"), ("device", "loader")])
def test_a_checkpoint_resumes_with_the_other_augmentation_path(tmp_path: Path, before: str, after: str) -> None:
    data = _tiny_data()
    part = pretrain(dataclasses.replace(TINY, augment=before), HARD, data, tmp_path, stop_after=1, progress=False)
    resumed = pretrain(dataclasses.replace(TINY, augment=after), HARD, data, tmp_path, resume=True, progress=False)
    assert resumed["epoch"] == 2 and [h["augment"] for h in resumed["history"]] == [before, after]
    assert not torch.equal(part["model"]["encoder.stem.0.weight"], resumed["model"]["encoder.stem.0.weight"])


def test_existing_checkpoint_needs_resume_and_matching_settings(tmp_path: Path) -> None:
    data = _tiny_data()
    pretrain(TINY, HARD, data, tmp_path, stop_after=1, progress=False)
    with pytest.raises(UserError, match="--resume"):
        pretrain(TINY, HARD, data, tmp_path, progress=False)
    with pytest.raises(UserError, match="lr"):
        pretrain(dataclasses.replace(TINY, lr=0.1), HARD, data, tmp_path, resume=True, progress=False)
    with pytest.raises(UserError, match="eval_at"):  # its history would lack the scores asked for
        pretrain(TINY, HARD, data, tmp_path, resume=True, progress=False, eval_at=(1,), score=lambda _: {})
    resumed = pretrain(dataclasses.replace(TINY, threads=1), HARD, data, tmp_path, resume=True, progress=False)
    assert resumed["epoch"] == 2  # runtime settings may change between the parts of a run
    (tmp_path / CHECKPOINT).write_bytes(b"garbage")
    with pytest.raises(UserError, match="corrupt"):
        pretrain(TINY, HARD, data, tmp_path, resume=True, progress=False)


WORLD, LOCAL_BATCH = 2, 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _views() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (WORLD * LOCAL_BATCH, 3, 16, 16), dtype=torch.uint8, generator=generator)
    augment = SimCLRAugment(16)
    return augment(images, generator).double(), augment(images, generator).double()


def _one_step(model: torch.nn.Module, view1: torch.Tensor, view2: torch.Tensor, gather: bool) -> tuple:
    """One step with BatchNorm in eval mode: its batch statistics are the one thing DDP keeps per rank."""
    model.eval()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = HardNegativeLoss(temperature=0.5, tau_plus=0.1, beta=1.0, gather_distributed=gather)
    loss = train_step(model, loss_fn, optimizer, view1, view2)
    return loss, {n: p.detach().clone() for n, p in model.named_parameters()}


def _ddp_worker(rank: int, port: int, out: dict) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD))
    with distributed_from_env(torch.device("cpu")) as (rank_seen, world):
        assert (rank_seen, world) == (rank, WORLD)
        model = build_model(TINY).double()
        ddp = wrap_for_training(model, TINY, torch.device("cpu"))
        assert isinstance(ddp, torch.nn.parallel.DistributedDataParallel)
        view1, view2 = _views()
        part = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
        loss, params = _one_step(ddp, view1[part], view2[part], gather=True)
        out[rank] = (loss, {n.removeprefix("module."): p for n, p in params.items()})


def test_ddp_two_gloo_ranks_equal_one_process_on_the_full_batch() -> None:
    out = mp.Manager().dict()
    mp.spawn(_ddp_worker, args=(_free_port(), out), nprocs=WORLD, join=True)
    view1, view2 = _views()
    full_loss, full_params = _one_step(build_model(TINY).double(), view1, view2, gather=False)
    losses = torch.stack([out[r][0] for r in range(WORLD)])
    # Each rank's loss averages its own anchors against all negatives; their mean is the full loss.
    assert losses.mean().item() == pytest.approx(full_loss.item(), rel=1e-12)
    assert not torch.allclose(losses[0], losses[1])
    initial = dict(build_model(TINY).double().named_parameters())
    for name, expected in full_params.items():
        assert not torch.equal(expected, initial[name].detach()), f"{name} did not move"
        for rank in range(WORLD):
            assert torch.allclose(out[rank][1][name], expected, rtol=1e-9, atol=1e-12), name
