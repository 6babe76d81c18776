"""Quick-thought's two GRU sentence encoders f and g (Logeswaran & Lee, ICLR 2018).

f encodes a sentence as an anchor, g as a candidate context; the score of a pair is
f(s_i) . g(s_j). After training, a sentence's embedding is the concatenation [f(s); g(s)].
Padded batches go through ``pack_padded_sequence``, so padding never reaches the GRU and a
sentence's encoding does not depend on what it is batched with.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from sentence.corpus import PAD_ID


class GRUEncoder(nn.Module):
    """Word embeddings -> one-layer GRU -> last hidden state."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.gru = nn.GRU(embed_dim, hidden_dim, batch_first=True)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """``tokens`` ``(B, T)`` padded with ``PAD_ID``; ``lengths`` ``(B,)`` >= 1 on the CPU -> ``(B, hidden)``."""
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed)
        return last[0]


class QuickThought(nn.Module):
    """The pair (f, g); each has its own word embeddings, as in the original model."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.f = GRUEncoder(vocab_size, embed_dim, hidden_dim)
        self.g = GRUEncoder(vocab_size, embed_dim, hidden_dim)

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return self.f(tokens, lengths), self.g(tokens, lengths)

    @torch.no_grad()
    def embed(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Sentence embeddings ``[f(s); g(s)]``, ``(B, 2 * hidden)``."""
        return torch.cat(self(tokens, lengths), dim=1)


def gather_padded(tokens: np.ndarray, offsets: np.ndarray, indices: np.ndarray, max_tokens: int) -> tuple[Tensor, Tensor]:
    """Sentences ``indices`` of a flat corpus as a right-padded ``(B, T)`` long tensor and their lengths.

    One fancy-indexing gather, no per-sentence Python work; sentences are truncated to
    ``max_tokens`` and an empty one becomes a single ``PAD_ID`` token (the GRU needs length >= 1).
    """
    starts = offsets[indices]
    lengths = np.minimum(offsets[indices + 1] - starts, max_tokens)
    width = max(int(lengths.max(initial=0)), 1)
    positions = np.arange(width)
    inside = positions < lengths[:, None]
    flat_index = np.where(inside, starts[:, None] + positions, 0)
    padded = np.where(inside, tokens[flat_index], PAD_ID).astype(np.int64)
    return torch.from_numpy(padded), torch.from_numpy(np.maximum(lengths, 1).astype(np.int64))
