"""Rich rendering of the ``procmem eval`` safety figures (see :mod:`procmem.evaluation.evaluate`).

The retrieval and replay figures are drawn by :func:`procmem.cli.render.figures_table`;
this module draws what an agent trusting procmem would risk: silent errors,
confident precision and coverage, the baselines, the precision of supplied values
by source and the reliability table.

Invariants: nothing here opens a store, reads the environment or decides exit
codes; trace ids are wrapped in :class:`rich.text.Text`, never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

__all__ = ["SAFETY_FIGURES", "safety_view"]

SAFETY_FIGURES: dict[str, str] = {
    "silent_errors": "calls sent without asking whose args differ from the recorded call "
                     "(the figure to drive to 0)",
    "paused_at_selection": "not confident, and the oracle declined the procedure: nothing ran",
    "confident_precision": "of the confident top hits: right procedure and every bound value right",
    "confident_coverage": "of the findable held-out traces: confident and right",
    "first_stage_hit_at_1": "hit@1 of the first stage alone (before re-ranking)",
    "overlap_hit_at_1": "hit@1 of a word-overlap baseline over the same procedures",
    "folds": "leave-one-out folds (each learns from all the other traces)",
}
"""The safety figures in display order, with what each one means."""


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def safety_view(figures: Mapping[str, Any]) -> Group:
    """The safety figures, supplied precision by source and the reliability table.

    Args:
        figures: :meth:`procmem.evaluation.evaluate.EvalReport.figures`.
    """
    table = Table(title="what an agent trusting procmem would risk", title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim", overflow="fold")
    for key, meaning in SAFETY_FIGURES.items():
        if key in figures and not (key == "folds" and figures[key] is None):
            style = "red" if key == "silent_errors" and figures[key] else ""
            table.add_row(key, Text(_shown(figures[key]), style=style), meaning)
    cases = figures.get("silent_error_cases") or []
    if cases:
        table.add_row("silent_error_cases", Text(", ".join(cases), style="red"),
                      "held-out traces with a silent error (--cases shows the calls)")
    supplied = Table(title="values sent, by source", title_justify="left")
    for column in ("source", "right", "total", "precision"):  # right: equal to the recorded
        supplied.add_column(column, justify="left" if column == "source" else "right")
    for source, row in (figures.get("supplied_precision") or {}).items():
        supplied.add_row(source, str(row["right"]), str(row["total"]), _shown(row["precision"]))
    reliability = Table(title="reliability of the top hit", title_justify="left")
    for column in ("bin", "n", "predicted", "observed"):  # mean confidence vs share right
        reliability.add_column(column, justify="right")
    for row in figures.get("reliability") or []:
        lo, hi = row["bin"]
        reliability.add_row(f"{lo:.1f}-{hi:.1f}", str(row["n"]), _shown(row["predicted"]),
                            _shown(row["observed"]))
    return Group(table, supplied, reliability)
