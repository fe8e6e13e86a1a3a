"""SVG drawn on the server: a procedure's flow diagram and small charts.

Every function returns SVG markup as a :class:`markupsafe.Markup`-ready string whose
text is escaped (``html.escape``); nothing is fetched or scripted. Sizes are in CSS
pixels; colours come from CSS classes in ``static/app.css`` (``svg .box``...).

Invariants:
    * Input is never trusted: names, paths and labels are escaped.
    * Charts scale to their largest value; an empty series draws an empty frame with
      a note, never a division by zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from ..core.model import Procedure
from ..core.template import inner_refs, references

__all__ = ["Edge", "Flow", "bar_chart", "flow_diagram", "flow_of", "line_chart", "timeline"]

_BOX_W, _BOX_H, _GAP = 250, 46, 28
_PARAM_W, _PARAM_H = 150, 28


@dataclass
class Edge:
    """Data flowing into a step: from a param (``source`` ``param:NAME``) or an
    earlier step (``step:ID``), with the JSON Pointer read and the arg written."""

    source: str
    target: str
    label: str


@dataclass
class Flow:
    """The graph of a procedure: its steps, params and edges (see :func:`flow_of`)."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


def _num(value: float) -> str:
    """A figure for a label: whole numbers from 10 up, else up to 2 decimals."""
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2f}".rstrip("0").rstrip(".")


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def flow_of(procedure: Procedure) -> Flow:
    """The data flow of ``procedure``: one edge per ``$param`` or ``$step`` reference
    in each step's args (``$ask`` sources and ``$select`` lists included).

    Returns:
        A :class:`Flow`; ``steps`` are ``{"id", "action", "sub", "asks", "note"}``.
    """
    flow = Flow(params=[p.name for p in procedure.params])
    for step in procedure.steps:
        asks = 0
        for where, node in references(step.args):
            arg = where or "(args)"
            for ref in inner_refs(node):
                if "$param" in ref:
                    flow.edges.append(Edge(f"param:{ref['$param']}", step.id, arg))
                elif "$step" in ref:
                    flow.edges.append(Edge(f"step:{ref['$step']}", step.id,
                                           f"{ref.get('path', '') or '/'} → {arg}"))
                elif "$ask" in ref:
                    asks += 1
        note = []
        if step.choice:
            note.append(f"choice {step.choice}#{step.option}")
        if step.optional:
            note.append("optional")
        if step.side_effect:
            note.append("side effect")
        flow.steps.append({"id": step.id, "action": step.action, "sub": step.subprocedure,
                           "asks": asks, "note": ", ".join(note)})
    return flow


def flow_diagram(procedure: Procedure, *, link: str = "/ui/procedures/") -> str:
    """The steps of ``procedure`` top to bottom, its params as input nodes on the left,
    one edge per reference (step-to-step edges on the right, labelled ``path → arg``);
    a sub-procedure step links to ``link + name``.
    """
    flow = flow_of(procedure)
    x_step, y0 = _PARAM_W + 90, 20
    ys = {s["id"]: y0 + i * (_BOX_H + _GAP) for i, s in enumerate(flow.steps)}
    step_edges = [e for e in flow.edges if e.source.startswith("step:")
                  and e.source[5:] in ys and e.target in ys]
    lanes = max(1, len(step_edges))
    width = x_step + _BOX_W + 40 + min(lanes, 12) * 26 + 230
    height = max(y0 + len(flow.steps) * (_BOX_H + _GAP), y0 + len(flow.params) * 40) + 20
    out = [f'<svg class="flow" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="flow diagram of {escape(procedure.name)}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'class="arrowhead"/></marker></defs>']
    first_use: dict[str, int] = {}
    for e in flow.edges:
        if e.source.startswith("param:") and e.target in ys:
            first_use.setdefault(e.source[6:], ys[e.target])
    py: dict[str, int] = {}
    next_y = y0
    for name in flow.params:
        y = max(next_y, first_use.get(name, next_y))
        py[name] = y
        next_y = y + 40
    for e in flow.edges:  # param edges first, under the boxes
        name = e.source[6:]
        if e.source.startswith("param:") and name in py and e.target in ys:
            y1, y2 = py[name] + _PARAM_H // 2, ys[e.target] + _BOX_H // 2
            out.append(f'<path class="edge param-edge" d="M{20 + _PARAM_W},{y1} C{x_step - 40},'
                       f'{y1} {x_step - 50},{y2} {x_step},{y2}" marker-end="url(#arrow)">'
                       f'<title>{escape(name)} → {escape(e.target)} {escape(e.label)}</title>'
                       '</path>')
    for name, y in py.items():
        out.append(f'<g class="param"><rect x="20" y="{y}" width="{_PARAM_W}" '
                   f'height="{_PARAM_H}" rx="14"/><text x="{20 + _PARAM_W // 2}" '
                   f'y="{y + 18}" text-anchor="middle">${escape(_short(name, 18))}</text>'
                   f'<title>param {escape(name)}</title></g>')
    right = x_step + _BOX_W
    for lane, e in enumerate(step_edges):
        y1 = ys[e.source[5:]] + _BOX_H - 10
        y2 = ys[e.target] + 12
        x = right + 20 + (lane % 12) * 26
        out.append(f'<path class="edge step-edge" d="M{right},{y1} C{x},{y1} {x},{y2} '
                   f'{right},{y2}" marker-end="url(#arrow)"><title>{escape(e.source[5:])} '
                   f'{escape(e.label)} ({escape(e.target)})</title></path>')
        out.append(f'<text class="edge-label" x="{x + 6}" y="{(y1 + y2) // 2 + 4}">'
                   f'{escape(_short(e.label, 34))}</text>')
    for i, s in enumerate(flow.steps):
        y = ys[s["id"]]
        if i:
            out.append(f'<line class="seq" x1="{x_step + _BOX_W // 2}" y1="{y - _GAP}" '
                       f'x2="{x_step + _BOX_W // 2}" y2="{y}" marker-end="url(#arrow)"/>')
        kind = "box sub" if s["sub"] else "box"
        if s["note"]:
            kind += " dashed" if "optional" in s["note"] or "choice" in s["note"] else ""
        label = f'{escape(_short(s["id"], 12))}: {escape(_short(s["action"], 26))}'
        extra = escape(_short(s["note"], 34)) + (" · asks" if s["asks"] else "")
        box = (f'<rect class="{kind}" x="{x_step}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" '
               f'rx="6"/><text x="{x_step + 10}" y="{y + 20}">{label}</text>'
               f'<text class="note" x="{x_step + 10}" y="{y + 37}">{extra}</text>'
               f'<title>{escape(s["id"])}: {escape(s["action"])}</title>')
        if s["sub"]:
            box = f'<a href="{escape(link + s["sub"])}">{box}</a>'
        out.append(f'<g class="step" data-step="{escape(s["id"])}">{box}</g>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(rows: Sequence[tuple[str, float | None]], *, unit: str = "",
              title: str = "", width: int = 560) -> str:
    """Horizontal bars, one per ``(label, value)``; ``None`` values draw as "no data"."""
    height = 24 + 22 * max(1, len(rows))
    top = max((v for _, v in rows if v is not None), default=0.0) or 1.0
    out = [f'<svg class="chart" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}"><text class="title" x="0" y="14">{escape(title)}</text>']
    if not rows:
        out.append('<text class="note" x="0" y="36">no data</text>')
    label_w, bar_w = 170, width - 170 - 90
    for i, (label, value) in enumerate(rows):
        y = 24 + i * 22
        out.append(f'<text x="0" y="{y + 13}">{escape(_short(label, 24))}</text>')
        if value is None:
            out.append(f'<text class="note" x="{label_w}" y="{y + 13}">no data</text>')
            continue
        w = max(1.0, bar_w * value / top)
        out.append(f'<rect class="bar" x="{label_w}" y="{y + 2}" width="{w:.1f}" height="14"/>'
                   f'<text x="{label_w + w + 6:.1f}" y="{y + 13}">{_num(value)}{escape(unit)}'
                   '</text>')
    out.append("</svg>")
    return "".join(out)


def line_chart(points: Sequence[tuple[str, float, float, float]], *, title: str = "",
               width: int = 560, height: int = 180) -> str:
    """A 0-1 line with a band: ``(label, value, lower, upper)`` per point, in order."""
    left, top, bottom, right = 34, 22, 22, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    out = [f'<svg class="chart" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}"><text class="title" x="0" y="14">{escape(title)}</text>']
    for tick in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - tick)
        out.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" '
                   f'y2="{y:.1f}"/><text class="note" x="0" y="{y + 4:.1f}">{tick:g}</text>')
    if not points:
        out.append(f'<text class="note" x="{left + 8}" y="{top + plot_h / 2:.1f}">'
                   'no runs yet</text></svg>')
        return "".join(out)
    step = plot_w / max(1, len(points) - 1)

    def xy(i: int, v: float) -> str:
        return f"{left + i * step:.1f},{top + plot_h * (1 - v):.1f}"

    band = [xy(i, p[3]) for i, p in enumerate(points)] + \
        [xy(i, p[2]) for i, p in reversed(list(enumerate(points)))]
    out.append(f'<polygon class="band" points="{" ".join(band)}"/>')
    line = " ".join(xy(i, p[1]) for i, p in enumerate(points))
    out.append(f'<polyline class="line" points="{line}"/>')
    for i, p in enumerate(points):
        out.append(f'<circle class="dot" cx="{xy(i, p[1]).split(",")[0]}" '
                   f'cy="{xy(i, p[1]).split(",")[1]}" r="2.5"><title>{escape(p[0])}: '
                   f'{p[1]:.2f} ({p[2]:.2f}-{p[3]:.2f})</title></circle>')
    out.append(f'<text class="note" x="{left}" y="{height - 4}">{escape(points[0][0])}</text>'
               f'<text class="note" x="{width - right}" y="{height - 4}" text-anchor="end">'
               f'{escape(points[-1][0])}</text></svg>')
    return "".join(out)


def timeline(rows: Sequence[dict[str, Any]], *, width: int = 760) -> str:
    """Gantt bars: ``{"label", "start_ms", "duration_ms", "status"}`` per row, in order.

    ``status`` becomes the bar's CSS class (``succeeded``, ``failed``, ``skipped``,
    ``unknown``); offsets are from the execution's start.
    """
    label_w, row_h = 220, 22
    height = 30 + row_h * max(1, len(rows))
    end = max((r["start_ms"] + r["duration_ms"] for r in rows), default=0.0) or 1.0
    plot = width - label_w - 80
    out = [f'<svg class="chart timeline" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="timeline"><text class="note" x="{label_w}" y="12">0 ms</text>'
           f'<text class="note" x="{label_w + plot}" y="12" text-anchor="end">{end:.0f} ms'
           '</text>']
    if not rows:
        out.append('<text class="note" x="0" y="40">no step ran</text>')
    for i, r in enumerate(rows):
        y = 22 + i * row_h
        x = label_w + plot * r["start_ms"] / end
        w = max(2.0, plot * r["duration_ms"] / end)
        out.append(f'<text x="0" y="{y + 13}">{escape(_short(str(r["label"]), 30))}</text>'
                   f'<rect class="bar {escape(str(r["status"]))}" x="{x:.1f}" y="{y + 2}" '
                   f'width="{w:.1f}" height="14"><title>{escape(str(r["label"]))}: '
                   f'{escape(str(r["status"]))}, {r["duration_ms"]:.0f} ms</title></rect>'
                   f'<text class="note" x="{x + w + 4:.1f}" y="{y + 13}">'
                   f'{r["duration_ms"]:.0f} ms</text>')
    out.append("</svg>")
    return "".join(out)
