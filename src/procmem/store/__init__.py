"""Storage backends behind one protocol (:class:`procmem.store.base.Store`).

Invariants:
    * :func:`open_store` is the only place that maps a location (path or URL) to
      a backend; everything above the store sees only the ``Store`` protocol.
    * A missing optional backend raises ``MissingExtra`` naming the install command.
"""

from __future__ import annotations

import os
import re

from ..errors import MissingExtra, UsageError
from .base import Store, index_text
from .sqlite import SQLiteStore

__all__ = ["SQLiteStore", "Store", "index_text", "open_store"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_KNOWN_SCHEME = re.compile(r"^(sqlite|postgres|postgresql):(?!//)", re.IGNORECASE)


def open_store(location: str | os.PathLike[str]) -> Store:
    """Open the store at a path or URL.

    Args:
        location: A file path (``"memory.db"``), ``":memory:"``, a SQLite URL
            (``"sqlite:///memory.db"`` is relative, ``"sqlite:////var/m.db"``
            absolute, ``"sqlite://"`` in memory), or a PostgreSQL URL
            (``"postgresql://user@host/db"``).

    Returns:
        A store implementing :class:`Store`.

    Raises:
        MissingExtra: A PostgreSQL URL; that backend ships with ``procmem[postgres]``.
        UsageError: Any other URL scheme, or a malformed SQLite URL.
        StoreUnavailable: The database cannot be opened.
    """
    text = os.fsdecode(location)
    match = _SCHEME.match(text)
    if match is None:
        if _KNOWN_SCHEME.match(text):
            raise UsageError(f"malformed store URL {text!r}: expected scheme://...")
        return SQLiteStore(text)
    scheme = match[1].lower()
    if scheme == "sqlite":
        rest = text[match.end():]
        if rest in ("", "/:memory:"):
            return SQLiteStore(":memory:")
        if not rest.startswith("/") or rest == "/":
            raise UsageError(f"SQLite URL must look like sqlite:///path (got {text!r})")
        return SQLiteStore(rest[1:])
    if scheme in ("postgresql", "postgres"):
        raise MissingExtra("PostgreSQL storage", "postgres")
    raise UsageError(
        f"unsupported store location {text!r}: use a file path, sqlite:///path or postgresql://"
    )
