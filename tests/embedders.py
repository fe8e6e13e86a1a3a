"""A deterministic test embedder shared by the search test modules."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class CountingEmbedder:
    """A deterministic bag-of-words embedder (64 dims) that records the texts it embeds.

    Each word adds 1 to dimension ``sum(ord(c)) % 64``; rows are L2-normalized
    (a text without words embeds to zeros).
    """

    dim = 64

    def __init__(self, model_id: str = "test:bow") -> None:
        self.model_id = model_id
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str], *, progress: object = None) -> np.ndarray:
        self.seen.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, sum(map(ord, word)) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)
