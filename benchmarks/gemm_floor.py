"""The matrix-multiply floor of a training step: its GEMMs alone, replayed back to back.

A step cannot run faster than the matrix multiplies it must do (at the same precision
on the same BLAS), so replaying exactly those GEMMs, same shapes and memory layouts,
with nothing in between gives a measured lower bound on the step time. Used by
``benchmarks.graph_epoch_speed`` to say how much speed-up any rewrite could still buy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
_GEMMS = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default}


@dataclass(frozen=True)
class Gemm:
    """One recorded matrix multiply: the op and the (shape, stride, dtype) of each tensor argument."""

    op: torch._ops.OpOverload
    tensors: tuple[tuple[tuple[int, ...], tuple[int, ...], torch.dtype], ...]

    @property
    def flops(self) -> int:
        """2·m·k·n (times the batch for bmm), from the last two arguments (m, k) and (k, n)."""
        *_, a, b = (shape for shape, _, _ in self.tensors)
        batch = a[0] if len(a) == 3 else 1
        return 2 * batch * a[-2] * a[-1] * b[-1]

    def inputs(self) -> list[torch.Tensor]:
        """Random tensors laid out as recorded (transposed views included), so BLAS takes the same path."""
        def storage(shape: tuple[int, ...], stride: tuple[int, ...]) -> int:
            return 1 + sum((n - 1) * s for n, s in zip(shape, stride, strict=True))

        return [torch.randn(storage(shape, stride), dtype=dtype).as_strided(shape, stride)
                for shape, stride, dtype in self.tensors]


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.gemms: list[Gemm] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if func in _GEMMS and all(a.layout == torch.strided for a in tensors):  # dense GEMMs only, not sparse products
            self.gemms.append(Gemm(func, tuple((tuple(a.shape), tuple(a.stride()), a.dtype) for a in tensors)))
        return func(*args, **(kwargs or {}))


def record_gemms(run: Callable[[], None]) -> list[Gemm]:
    """Every dense GEMM (forward and backward) that ``run()`` dispatches on this thread, in order."""
    recorder = _Recorder()
    with recorder:
        run()
    return recorder.gemms


def replay_seconds(gemms: list[Gemm], rounds: int = 3) -> float:
    """Best time over ``rounds`` of running all ``gemms`` back to back on fresh random inputs."""
    prepared = [(g.op, g.inputs()) for g in gemms]
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for op, inputs in prepared:
            op(*inputs)
        best = min(best, time.perf_counter() - start)
    return best
