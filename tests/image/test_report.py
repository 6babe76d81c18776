"""The image table counts each run once and shows GPU epoch times with their runtime options."""

from __future__ import annotations

from benchmarks.image_page import image_gpu_lines
from image.report import rows


def _record(seed: int, linear: float, *, bf16: bool = False, gpu: str | None = None) -> dict:
    config = {"profile": "paper", "dataset_label": "CIFAR-10", "arch_label": "resnet18", "epochs": 2, "method": "simclr",
              "objective": {"name": "ntxent", "params": {}}, "batch_size": 256, "pretrain_images": 50_000, "bf16": bf16,
              "channels_last": bf16, "compile": False, "sync_bn": False}
    metrics = {"knn_top1": linear - 1, "linear_top1": linear, "epoch_s": [30.0, 10.0], "ranks": 1, "peak_memory_mb": 900.0}
    return {"pipeline": "image", "config": config, "metrics": metrics, "seed": seed, "git_commit": "abc" * 5 + "-dirty",
            "command": "torchrun --nnodes 1 --nproc_per_node 1 -m image run" if gpu else "python -m image run",
            "hardware": {"cpu": "x", "cpu_count": 16, "torch_threads": 16, "gpu": gpu}}


def test_a_run_recorded_twice_counts_once_its_latest() -> None:
    # The same run with other runtime options (bf16) is the same seed, not a second one.
    (row,) = rows([_record(0, 40.0), _record(0, 42.0, bf16=True), _record(1, 44.0)])
    assert row.n == 2 and row.linear == [42.0, 44.0]


def test_gpu_epoch_rows_show_options_and_the_steady_rate() -> None:
    lines = image_gpu_lines([_record(0, 40.0), _record(0, 42.0, bf16=True, gpu="NVIDIA H200")])
    (row,) = [line for line in lines if line.startswith("| NVIDIA H200")]
    # epoch 2 took 10 s for 195 full batches of 256 images: 4992 images/s
    assert "| yes | yes | no | no | 1 (torchrun) | 30.0 | 10.0 | 4992 | 900 | 41.00 | 42.00 | abcabcabcabc-dirty |" in row
    assert image_gpu_lines([_record(0, 40.0)]) == []
