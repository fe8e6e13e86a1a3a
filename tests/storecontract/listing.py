"""Contract tests of :class:`~procmem.store.listing.ListingRecords` (what a whole-store copy
needs), and of the round trips ``procmem copy`` relies on in the other protocols."""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
import pytest

from procmem.core.errors import UsageError
from procmem.security.keys import ApiKey
from procmem.store import Store

from .helpers import NAMES, T0, proc


class ListingContract:
    """Aliases, embedding hashes and calibration keys are listed in code-point order."""

    def test_aliases_are_listed_by_old_name_and_put_as_they_are(self, store: Store) -> None:
        assert store.list_aliases() == {}
        store.put_procedure(proc("new"))
        store.put_procedure(proc("other"))
        for old in ("zeta", "Zeta", "alpha", "_x", "éclair"):
            store.put_alias(old, "new")
        store.put_alias("B", "other")
        expected = {o: ("other" if o == "B" else "new")
                    for o in sorted(["zeta", "Zeta", "alpha", "_x", "éclair", "B"])}
        assert list(store.list_aliases().items()) == list(expected.items())
        assert store.resolve_alias("éclair") == "new" and store.resolve_alias("new") is None
        assert store.list_versions("new")[0].name == "new"  # no record moved
        store.put_alias("B", "new")  # replaced
        assert store.resolve_alias("B") == "new"
        store.put_alias("ghost", "gone")  # a target without versions (a copy writes aliases
        assert store.resolve_alias("ghost") == "gone"  # in any order relative to versions)

    def test_put_alias_refuses_self_empty_and_chains(self, store: Store) -> None:
        store.put_alias("a", "b")
        for old, new in [("x", "x"), ("", "x"), ("x", ""), ("c", "a"), ("b", "c")]:
            with pytest.raises(UsageError):
                store.put_alias(old, new)
        assert store.list_aliases() == {"a": "b"}

    def test_put_alias_then_rename_keeps_aliases_flat(self, store: Store) -> None:
        store.put_procedure(proc("b"))
        store.put_alias("a", "b")
        store.rename_procedure("b", "c")
        assert store.list_aliases() == {"a": "c", "b": "c"}

    def test_procedure_names_are_listed_once_each_sorted_whatever_the_status(
            self, store: Store) -> None:
        assert store.list_procedure_names() == []
        names = ["zeta", "Zeta", "alpha", "_x", "a.b", "a-b", "a_b", "b2"]
        for name in names:
            store.put_procedure(proc(name))
        store.put_procedure(proc("alpha", version=2, status="candidate"))
        store.set_status("zeta", 1, "deprecated")
        assert store.list_procedure_names() == sorted(names)
        assert store.list_procedure_names() == [
            p.name for p in store.list_procedures(status=None, limit=100)]
        store.delete_procedure("b2")
        assert "b2" not in store.list_procedure_names()

    def test_embedding_hashes_are_listed_per_model_sorted(self, store: Store) -> None:
        assert store.list_embedding_hashes("m") == []
        hashes = [uuid.uuid4().hex for _ in range(7)] + ["Z", "a", "_"]
        store.put_embeddings("m", {h: np.ones(3, dtype=np.float32) for h in hashes})
        store.put_embeddings("other", {"only": np.ones(2, dtype=np.float32)})
        assert store.list_embedding_hashes("m") == sorted(hashes)
        assert store.list_embedding_hashes("other") == ["only"]
        assert store.list_embedding_hashes("nope") == []
        store.delete_embeddings("m")
        assert store.list_embedding_hashes("m") == []

    def test_calibration_keys_are_listed_sorted(self, store: Store) -> None:
        assert store.list_calibration_keys() == []
        for key in NAMES:
            store.put_calibration(key, f'{{"key": "{key}"}}')
        store.put_calibration("zeta", "{}")  # replaced, listed once
        assert store.list_calibration_keys() == sorted(NAMES)

    def test_a_copied_record_keeps_what_a_copy_reads_back(self, store: Store) -> None:
        """What ``procmem copy`` writes comes back equal: a revoked key with its
        ``revoked_at``, a version with its status and ``created_at``."""
        revoked = ApiKey(id=uuid.uuid4().hex[:12], tenant="acme", scopes=("read",),
                         secret_hash="c" * 64, created_at=T0,
                         revoked_at=T0 + timedelta(days=1))
        store.put_api_key(revoked)
        assert store.find_api_key(revoked.id) == revoked
        deprecated = proc("old", 3, status="deprecated", created_at=T0)
        store.put_procedure(deprecated)
        assert store.get_procedure("old", 3) == deprecated
