import pytest
import torch

from common.subnormal import flush_denormal

SUBNORMAL = 1e-39  # below float32's smallest normal, 1.18e-38


def test_flushes_inside_the_block_and_restores_after():
    x = torch.tensor([SUBNORMAL, 1.0])
    assert float(x[0] * 1.0) != 0.0
    with flush_denormal() as active:
        if not active:
            pytest.skip("this CPU cannot flush subnormals")
        assert float(x[0] * 1.0) == 0.0 and float(x[1] * 1.0) == 1.0  # normal values untouched
    assert float(x[0] * 1.0) != 0.0


def test_disabled_leaves_subnormals_alone():
    with flush_denormal(False) as active:
        assert not active and float(torch.tensor(SUBNORMAL) * 1.0) != 0.0
