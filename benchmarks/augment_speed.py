"""Images per second of the two image augmentation paths alone (``python -m image run --augment``), no training.

``loader``: a uint8 batch in CPU memory, both views made by ``image.data.SimCLRAugment`` on the CPU, then copied to
``--device``. ``device``: the batch already on ``--device``, both views made there by ``image.gpu_augment`` as one
batch of 2B. An image is one source image (two views each), the unit of the training's images/s. On a CPU the
copy is free and the comparison is of the two implementations; on a GPU it is the issue-40 question, whether
the GPU waits for the CPU. Prints a table; writes nothing.

Run: ``OMP_NUM_THREADS=1 python -m benchmarks.augment_speed --threads 1`` (add ``--device cuda`` on a GPU).
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import TYPE_CHECKING

from common.cli import Parser, at_least, run_main

if TYPE_CHECKING:  # torch is imported where it runs, so that --help answers at once
    import torch


def measure(path: str, batch: int, size: int, device: torch.device, repeats: int, seed: int = 0) -> float:
    """Median images/s of ``path`` over ``repeats`` batches, after one warm-up batch."""
    import dataclasses

    import torch

    from image.config import PROFILES
    from image.train import view_maker

    make = view_maker(dataclasses.replace(PROFILES["quick"], crop_size=size), path)  # what training calls
    where = device if path == "device" else torch.device("cpu")
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(seed)).to(where)
    generator = torch.Generator(device=where).manual_seed(seed)

    def views() -> tuple[torch.Tensor, torch.Tensor]:
        first, second = make(images, generator)
        return first.to(device), second.to(device)

    seconds = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        views()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:  # the first call holds allocation and kernel selection
            seconds.append(time.perf_counter() - start)
    return batch / statistics.median(seconds)


def main(argv: list[str]) -> int:
    parser = Parser(prog="python -m benchmarks.augment_speed", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=at_least(1), default=512, help="images per batch (default: 512)")
    parser.add_argument("--size", type=at_least(1), default=32, help="image side and crop size (default: 32, CIFAR)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--repeats", type=at_least(1), default=10, help="timed batches per path (default: 10)")
    parser.add_argument("--threads", type=at_least(0), default=0, help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args(argv)
    import torch

    from image.train import resolve_device

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{args.batch} images of {args.size}x{args.size}, two views each, on {device}, "
          f"{torch.get_num_threads()} CPU thread(s), median of {args.repeats}; torch {torch.__version__}")
    print("| augment | images/s |\n|---|---|")
    for path in ("loader", "device"):
        print(f"| {path} | {measure(path, args.batch, args.size, device, args.repeats):.0f} |")
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
