"""A self-contained ``report.html``: the summary, every figure inlined as a base64 PNG, the study's
definition and the notes needed to read it. No external file, script, font or stylesheet is used."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from decaylab.report.data import StudyResults
from decaylab.report.summary import headline, legend, table

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.meta { color: #555; font-size: 0.9rem; }
.headline { background: #f3f6fb; border-left: 4px solid #3a6ea5; padding: 0.7rem 1rem; }
table { border-collapse: collapse; font-size: 0.88rem; margin: 0.6rem 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.25rem 0.55rem; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
figcaption { color: #444; font-size: 0.9rem; }
.small { font-size: 0.85rem; color: #444; } code { background: #f4f4f4; padding: 0 0.2rem; }
"""

NOTES = [
    "Every number comes from the study's SQLite store (<code>results.sqlite</code>); "
    "<code>decaylab report DIR</code> rebuilds this page from it alone.",
    "Spread is the sample standard deviation over seeds. Runs with the same seed share the initialization "
    "and the mini-batch order, so differences to the no-decay run are paired by seed.",
    "Strengths are in each method's own units: with SGD momentum μ, coupled L2 at λ decays about as fast as "
    "decoupled L2 (scale 'lr') at λ/(1-μ), and penalty_l2 at λ equals coupled L2 at 2λ. The EMA-timescale figure "
    "puts the L2-type methods on one axis: timescale = 1/(c · steps per epoch) epochs with c the fraction of each "
    "weight removed per step (decoupled: c = s·λ; coupled on SGD: c = lr·λ/(1-μ); undefined for L1-type methods "
    "and for coupled/penalty decay on Adam).",
    "A run whose loss or weights became NaN/inf is recorded as diverged and left out of means; a configuration "
    "whose every seed diverged is marked with a red x on the strength axis.",
]


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _markdown_bold(text: str) -> str:
    parts = html.escape(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def _definition(results: StudyResults) -> str:
    task_rows = [[k, json.dumps(v)] for k, v in results.task.items()]
    grid_rows = [[k, json.dumps(v)] for k, v in results.grid.items()]
    return (
        "<h2>Study</h2><div style='display:flex; gap:2rem; flex-wrap:wrap'>"
        f"<div><h3>task</h3>{_table(['option', 'value'], task_rows)}</div>"
        f"<div><h3>grid</h3>{_table(['axis', 'values'], grid_rows)}</div></div>"
    )


def _problems(results: StudyResults) -> str:
    rows = [
        [
            r["method"],
            f"{r['strength']:g}",
            f"{r['lr']:g}",
            str(r["seed"]),
            r["status"],
            (r["message"] or "").splitlines()[0],
        ]
        for r in results.runs
        if r["status"] in ("diverged", "failed")
    ]
    if not rows:
        return ""
    return "<h2>Diverged and failed runs</h2>" + _table(["method", "strength", "lr", "seed", "status", "message"], rows)


def write_html(results: StudyResults, figures: list[tuple[Path, str]], path: Path) -> Path:
    header, rows = table(results)
    counts = ", ".join(f"{v} {k}" for k, v in sorted(results.counts().items()))
    title = f"decaylab study: {results.task.get('dataset')} / {results.task.get('model')}"
    figures_html = "".join(
        f"<figure>{_img(p)}<figcaption>{html.escape(caption)}</figcaption></figure>" for p, caption in figures
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="meta">study {html.escape(results.meta.get("fingerprint", "?"))} · created
{html.escape(results.meta.get("created_at", "?"))} · runs: {html.escape(counts)} ·
ranked by {html.escape(results.rank_by)}</p>
<p class="headline">{html.escape(headline(results))}</p>
<h2>Each method at its best strength</h2>
{_table(header, rows)}
<p class="small">{_markdown_bold(legend(results))}</p>
<h2>Figures</h2>
{figures_html}
{_problems(results)}
{_definition(results)}
<h2>Notes</h2>
<ul class="small">{"".join(f"<li>{n}</li>" for n in NOTES)}</ul>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
