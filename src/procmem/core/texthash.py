"""The key of a text's stored embedding: ``text_hash(text)``, shared by the search
index (:mod:`procmem.search.index`) and every store backend, so neither imports the other."""

from __future__ import annotations

import hashlib

__all__ = ["text_hash"]


def text_hash(text: str) -> str:
    """SHA-256 hex digest of ``text`` as UTF-8 (64 lowercase hex characters): the key
    of its stored embedding."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
