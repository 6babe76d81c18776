import subprocess
import sys
from pathlib import Path

import pytest

# The same forward and backward, again and again, as in training: the page faults of the last rounds.
PROBE = """
import resource, sys, torch
from common.allocator import retain_freed_memory
active = retain_freed_memory() if sys.argv[1] == "retain" else False
torch.set_num_threads(1)  # one thread, one malloc arena: a second thread's arena would fault in its block late
x = torch.randn(8192, 96, requires_grad=True)
w = torch.randn(96, 1024, requires_grad=True)  # the (8192, 1024) products are 32 MiB, above glibc's mmap threshold
for round_ in range(12):
    if round_ == 9:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.nn.functional.softplus(x @ w).sum().backward()
print(active, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def steady_state_page_faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    return out[0] == "True", int(out[1])


def test_a_repeated_step_stops_faulting_in_pages_once_freed_memory_is_kept():
    active, kept = steady_state_page_faults("retain")
    if not active:
        pytest.skip("not glibc: mallopt unavailable")
    _, default = steady_state_page_faults("default")
    assert default > 10_000  # glibc maps and unmaps the 32 MiB blocks every round: 8,192 pages each
    # Usually 0. Under load a probe has been seen to map one or two 32 MiB blocks late (8,192 or 16,384 faults)
    # once in its last three rounds: at most one round's worth, where the default maps them in every round.
    assert kept <= default / 3 + 100, (kept, default)
