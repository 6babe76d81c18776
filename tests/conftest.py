"""Test settings: one torch thread per xdist worker (two workers share two cores)."""

import os

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)
