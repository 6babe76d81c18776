"""The shared command-line pieces that every pipeline uses the same way."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from common.paths import REPO_ROOT

_ASK = ("import argparse, sys; from common.cli import progress_flag, show_progress; p = argparse.ArgumentParser(); "
        "progress_flag(p); print(show_progress(p.parse_args(sys.argv[1:])))")


def _shows_bars(*flags: str, terminal: bool) -> bool:
    """Whether a real process, its stderr a pseudo-terminal or a pipe, would draw progress bars."""
    leader, follower = pty.openpty() if terminal else (None, subprocess.PIPE)
    try:
        out = subprocess.run([sys.executable, "-c", _ASK, *flags], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             stderr=follower, text=True, check=True).stdout
    finally:
        if terminal:
            os.close(leader)
            os.close(follower)
    return {"True\n": True, "False\n": False}[out]


def test_progress_bars_show_on_a_terminal_unless_hidden_and_never_in_a_log():
    assert _shows_bars(terminal=True)
    assert not _shows_bars("--no-progress", terminal=True)
    assert not _shows_bars(terminal=False)
