"""Rank views from stored procedure JSON, without validating whole procedures.

Search needs a :class:`~procmem.search.retrieval.RankView` of every first-stage
candidate; the first time a name is a candidate its view is made from the
store. Validating a whole :class:`~procmem.core.model.Procedure` (params' examples,
steps' checks, timestamps) costs about three times parsing its JSON, and a view
reads only a few fields. :func:`view_from_json` parses the stored text
(:meth:`procmem.store.base.Store.get_procedures_json`, records validated when
they were put), validates only the extractors, and hands
:meth:`RankView.of <procmem.search.retrieval.RankView.of>` a lean stand-in with just
the attributes it reads.

Invariant: ``view_from_json(text) == RankView.of(Procedure.model_validate_json(text))``
for every stored procedure, or :func:`view_from_json` raises ``ValueError`` (the
caller then loads the procedure whole); ``tests/test_rankcache.py`` checks the
equality on a memory learned from real traces, so a view that starts reading
another attribute fails there (``AttributeError`` here is turned into
``ValueError``).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

from pydantic import ValidationError

from ..core.model import Extractor, Procedure
from .retrieval import RankView

__all__ = ["view_from_json"]


def _extractor(data: Any) -> Extractor | None:
    return None if data is None else Extractor.model_validate(data)


def view_from_json(text: str | bytes) -> RankView:
    """The rank view of a procedure stored as ``text`` (``model_dump_json(by_alias=True)``).

    Raises:
        ValueError: The text is not such a record, or the view reads an attribute
            the lean stand-in does not have (load the procedure whole instead).
    """
    try:
        d = json.loads(text)
        lineage = d.get("lineage") or {}
        lean = SimpleNamespace(
            name=d["name"], version=d.get("version", 1), tags=d.get("tags", []),
            namespace=d.get("namespace", "default"),
            params=[SimpleNamespace(name=p["name"], schema_=p.get("schema", {}),
                                    extractor=_extractor(p.get("extractor")))
                    for p in d.get("params", [])],
            steps=[SimpleNamespace(action=s["action"], args=s.get("args", {}))
                   for s in d.get("steps", [])],
            lineage=SimpleNamespace(traces=lineage.get("traces", [])),
        )
        return RankView.of(cast("Procedure", lean))
    except ValidationError as err:  # a ValueError, named for clarity
        raise ValueError(f"stored extractor does not validate: {err}") from err
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"not a stored procedure record for a rank view: {err!r}") from err
