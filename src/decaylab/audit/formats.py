"""Render audit results: a terminal table, JSON, CSV and Markdown (with a summary on top)."""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

from decaylab.audit.result import KINDS, NOT_PROBED, AuditResult
from decaylab.audit.settings import ProbeSettings

FORMATS: tuple[str, ...] = ("table", "json", "csv", "markdown")
VERSIONED_PACKAGES: tuple[str, ...] = ("torch", "torch_optimizer", "pytorch_optimizer", "decaylab")

CSV_FIELDS: tuple[str, ...] = (
    "name",
    "label",
    "kind",
    "scale",
    "strength_multiplier",
    "form",
    "momentum",
    "no_grad",
    "default_strength",
    "decays_by_default",
    "paths",
    "status",
    "seconds",
    "why",
    "notes",
    "surprises",
    "recipe",
)


def package_versions() -> dict[str, str]:
    """Versions of the packages an audit depends on, from their distribution metadata."""
    distributions = metadata.packages_distributions()
    versions = {}
    for name in VERSIONED_PACKAGES:
        version = "not installed"
        for dist in distributions.get(name, []):
            with contextlib.suppress(metadata.PackageNotFoundError):
                version = metadata.version(dist)
                break
        else:
            with contextlib.suppress(Exception):  # a module outside any distribution (a source checkout)
                version = str(getattr(importlib.import_module(name), "__version__", "unknown"))
        versions[name] = version
    return versions


SURPRISE_GROUPS: tuple[tuple[str, str, bool], ...] = (
    ("constant shift", "constant shift: every weight moves by the same amount, whatever its sign (a bug)", False),
    ("weight_decay makes weights grow", "weight_decay makes the weights grow (a sign error?)", False),
    ("decays parameters that have no gradient", "decays parameters that have no gradient", True),
    ("crashes when a parameter has no grad", "crashes when a parameter has no gradient", True),
    ("the foreach", "implementation paths (foreach / fused) disagree", True),
    ("the fused", "implementation paths (foreach / fused) disagree", True),
    ("scaled by the constructor's lr", "ignores the LR scheduler (scaled by the initial lr only)", False),
    ("accepts weight_decay through **kwargs", "weight_decay is accepted but changes nothing", True),
    ("has a ", "weight_decay is accepted but changes nothing", True),
    ("strength is", "strength differs from the nominal weight_decay", True),
    (
        "weight_decay acts as a sign step",
        "adaptive-coupled: weight_decay is a sign step of ~lr, whatever its value",
        False,
    ),
    ("decay depends on the gradient", "the decay depends on the gradient's size", False),
    ("decays only when the gradient", "decays only when the gradient is non-zero", False),
    ("no decay during the first", "no decay during the first steps", True),
    (
        "with gradients the runs differ",
        "the update reacts to the decayed weights (relative steps, trust ratios...)",
        False,
    ),
    ("not a standard decay", "not a standard decay (label: other)", False),
)
"""Surprise messages grouped for the summary: (message prefix, group title, whether each member's
own message is shown), most alarming first."""


def group_surprises(surprising: dict[str, list[str]]) -> dict[str, list[str]]:
    """``{group title: ["`name`" or "`name` (message)", ...]}`` in the order of :data:`SURPRISE_GROUPS`."""
    groups: dict[str, list[str]] = {title: [] for _, title, _ in SURPRISE_GROUPS}
    for name, messages in surprising.items():
        for message in messages:
            match = next((g for g in SURPRISE_GROUPS if message.startswith(g[0])), None)
            title, detail = (match[1], match[2]) if match else (message, False)
            groups.setdefault(title, []).append(f"`{name}`" + (f" ({message})" if detail else ""))
    return {title: members for title, members in groups.items() if members}


@dataclass
class Summary:
    """How many optimizers got each label, and which behave surprisingly."""

    total: int
    counts: dict[str, int]
    surprising: dict[str, list[str]]
    not_probed: dict[str, str]


def _label_order(label: str) -> tuple[int, str]:
    kind = next((k for k in KINDS if label.startswith(k)), label)
    return (KINDS.index(kind) if kind in KINDS else len(KINDS), label)


def summarize(results: Sequence[AuditResult]) -> Summary:
    counts = Counter(r.label for r in results)
    return Summary(
        total=len(results),
        counts={label: counts[label] for label in sorted(counts, key=_label_order)},
        surprising={r.name: list(r.surprises) for r in results if r.surprises},
        not_probed={r.name: r.why for r in results if r.kind == NOT_PROBED},
    )


def _strength(r: AuditResult) -> str:
    return "" if r.strength_multiplier is None else f"{r.strength_multiplier:.3g}"


def _default(r: AuditResult) -> str:
    if r.decays_by_default is None or r.default_strength == "n/a":
        return r.default_strength
    return f"{r.default_strength} ({'decays' if r.decays_by_default else 'off'})"


ROW_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("optimizer", lambda r: r.name),
    ("label", lambda r: r.label),
    ("x strength", _strength),
    ("momentum", lambda r: r.momentum),
    ("grad None", lambda r: r.no_grad),
    ("default wd", _default),
    ("why", lambda r: r.why),
)


def to_json(results: Sequence[AuditResult], settings: ProbeSettings | None = None) -> str:
    document = {
        "versions": package_versions(),
        "settings": asdict(settings or ProbeSettings()),
        "summary": asdict(summarize(results)),
        "results": [r.to_dict() for r in results],
    }
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"


def to_csv(results: Sequence[AuditResult]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        row = {k: v for k, v in r.to_dict().items() if k in CSV_FIELDS}
        row["notes"] = " | ".join(r.notes)
        row["surprises"] = " | ".join(r.surprises)
        writer.writerow(row)
    return buffer.getvalue()


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_summary(results: Sequence[AuditResult]) -> str:
    summary = summarize(results)
    lines = [f"**{summary.total} optimizers audited.**", "", "| label | count |", "|---|---:|"]
    lines += [f"| {_md(label)} | {count} |" for label, count in summary.counts.items()]
    if summary.surprising:
        lines += ["", f"**Surprising behaviour ({len(summary.surprising)} optimizers):**", ""]
        for title, members in group_surprises(summary.surprising).items():
            lines.append(f"- {_md(title)} ({len(members)}): " + _md(", ".join(members)))
    if summary.not_probed:
        lines += ["", f"**Not probed ({len(summary.not_probed)}):**", ""]
        lines += [f"- `{name}`: {_md(why)}" for name, why in summary.not_probed.items()]
    return "\n".join(lines) + "\n"


def to_markdown(results: Sequence[AuditResult], title: str = "Weight-decay audit", preamble: str = "") -> str:
    """A document: title, preamble, summary, one table row per optimizer, then notes per optimizer."""
    parts = [f"# {title}", ""]
    if preamble:
        parts += [preamble.rstrip(), ""]
    parts += ["## Summary", "", markdown_summary(results), "## Optimizers", ""]
    header = [name for name, _ in ROW_COLUMNS]
    parts.append("| " + " | ".join(header) + " |")
    parts.append("|" + "|".join("---" for _ in header) + "|")
    for r in results:
        cells = [f"`{r.name}`"] + [_md(get(r)) for name, get in ROW_COLUMNS[1:]]
        parts.append("| " + " | ".join(cells) + " |")
    detailed = [r for r in results if r.notes or r.paths or r.form or r.recipe]
    if detailed:
        parts += ["", "## Details", ""]
        for r in detailed:
            facts = [f"form: {r.form}" if r.form else "", f"paths: {r.paths}" if r.paths else ""]
            facts += [f"probe: {r.recipe}" if r.recipe else "", *r.notes]
            parts.append(f"- `{r.name}`: " + _md("; ".join(f for f in facts if f)))
    return "\n".join(parts) + "\n"


def to_table(results: Sequence[AuditResult], width: int | None = None) -> str:
    """A terminal table (rich), followed by the summary counts."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=True, expand=True)
    for name, _ in ROW_COLUMNS:
        table.add_column(name, overflow="fold", ratio=4 if name == "why" else None)
    for r in results:
        table.add_row(*[str(get(r)) for _, get in ROW_COLUMNS])
    buffer = io.StringIO()
    width = width or max(shutil.get_terminal_size((160, 24)).columns, 100)
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    console.print(table)
    summary = summarize(results)
    console.print(", ".join(f"{label}: {count}" for label, count in summary.counts.items()))
    if summary.surprising:
        console.print(f"surprising: {len(summary.surprising)} ({', '.join(summary.surprising)})")
    return buffer.getvalue()


def render(results: Sequence[AuditResult], fmt: str, settings: ProbeSettings | None = None) -> str:
    """``fmt`` is one of :data:`FORMATS`."""
    if fmt == "json":
        return to_json(results, settings)
    if fmt == "csv":
        return to_csv(results)
    if fmt == "markdown":
        return to_markdown(results)
    if fmt == "table":
        return to_table(results)
    raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
