"""The summary table (each method at its best strength) and the headline finding.

The same table is written to ``summary.md``, embedded in ``report.html`` and printed in the
terminal. Numbers are ``mean±std`` over seeds (sample standard deviation); ``Δ`` columns are
differences to the no-decay run *paired by seed* (same initialization and mini-batch order).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from decaylab.report.data import BASELINE, Cell, Stat, StudyResults
from decaylab.sandbox.study import RANK_BY


def fmt(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (``—`` for a missing value)."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}"


def fmt_strength(value: float) -> str:
    return "0" if value == 0 else f"{value:g}"


def fmt_stat(stat: Stat, *, decimals: int = 3, scale: float = 1.0, signed: bool = False) -> str:
    """``mean±std`` with fixed ``decimals`` after multiplying by ``scale`` (``mean`` alone for one seed)."""
    if stat.n == 0:
        return "—"
    mean = f"{stat.mean * scale:{'+' if signed else ''}.{decimals}f}"
    return mean if stat.n < 2 or not math.isfinite(stat.std) else f"{mean}±{stat.std * scale:.{decimals}f}"


@dataclass(frozen=True)
class Row:
    """A method at its best (lr, strength) cell, with the no-decay cell at the same lr."""

    method: str
    cell: Cell
    baseline: Cell | None

    def stat(self, metric: str) -> Stat:
        return self.cell.stat(metric)

    def delta(self, metric: str) -> Stat:
        if self.baseline is None or self.cell is self.baseline:
            return Stat(math.nan, math.nan, 0)
        return self.cell.paired_difference(self.baseline, metric)


def summary_rows(results: StudyResults) -> list[Row]:
    """Each method at its best cell (by the study's ``rank_by``), in the grid's method order."""
    rows = []
    for method in results.methods:
        best = results.best(method)
        if best is not None:
            rows.append(Row(method, best, results.baseline(best.lr)))
    return rows


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Row], str]
    note: str = ""


def table_columns(results: StudyResults) -> list[Column]:
    """The summary's columns; ``note`` explains each in the Markdown/HTML legend."""
    if results.regression:
        metric, scale, decimals, unit = "R²", 1.0, 3, ""
    else:
        metric, scale, decimals, unit = "acc", 100.0, 1, " (%)"
    pp = " (pp)" if not results.regression else ""

    def stat(name: str, **kw: object) -> Callable[[Row], str]:
        return lambda row: fmt_stat(row.stat(name), **kw)  # type: ignore[arg-type]

    def delta(name: str, **kw: object) -> Callable[[Row], str]:
        return lambda row: fmt_stat(row.delta(name), signed=True, **kw)  # type: ignore[arg-type]

    columns = [
        Column("method", lambda row: row.method),
        Column("strength", lambda row: fmt_strength(row.cell.strength), f"best strength by {RANK_BY[results.rank_by]}"),
    ]
    if len(results.lrs) > 1:
        columns.append(Column("lr", lambda row: fmt(row.cell.lr), "the learning rate of the best cell"))
    columns += [
        Column(f"test {metric}{unit}", stat("test_metric", scale=scale, decimals=decimals)),
        Column("test loss", stat("test_loss"), f"final {results.loss_name} on the test split"),
        Column("Δ loss", delta("test_loss"), f"test loss minus the {BASELINE} run's, paired by seed"),
        Column(f"Δ {metric}{pp}", delta("test_metric", scale=scale, decimals=decimals), f"same for test {metric}"),
        Column(f"gap{pp}", stat("gap_metric", scale=scale, decimals=decimals), f"train {metric} minus test {metric}"),
        Column("‖w‖", stat("weight_norm", decimals=2), "L2 norm of all parameters after the last epoch"),
        Column("|w|<1e-3 (%)", stat("small_frac", scale=100.0, decimals=1), "share of parameters below 1e-3"),
    ]
    if results.regression:
        columns.append(
            Column("recovered", stat("recovered", decimals=1), "true features among the k largest input weights")
        )
    columns.append(
        Column("ok/div", lambda row: f"{len(row.cell.finished)}/{row.cell.diverged}", "seeds finished / diverged")
    )
    return columns


def table(results: StudyResults) -> tuple[list[str], list[list[str]]]:
    """The summary as a header and rows of strings."""
    columns = table_columns(results)
    rows = [[c.value(row) for c in columns] for row in summary_rows(results)]
    return [c.header for c in columns], rows


def legend(results: StudyResults) -> str:
    notes = "; ".join(f"**{c.header}**: {c.note}" for c in table_columns(results) if c.note)
    return (
        f"{notes}. Values are mean±std over seeds (sample standard deviation). "
        "The best strength is picked on the test split (there is no separate validation split), "
        "so best-of numbers are slightly optimistic."
    )


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(map(escape, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(escape, row)) + " |" for row in rows]
    return "\n".join(lines)


def headline(results: StudyResults) -> str:
    """Which method and strength won (by the study's ranking), by how much, with the spread over seeds."""
    rows = [r for r in summary_rows(results) if r.method != BASELINE]
    if not rows:
        return "No regularized run has finished yet."
    metric = results.rank_by
    other = "test_metric" if metric == "test_loss" else "test_loss"
    names = {"test_loss": f"test loss ({results.loss_name})", "test_metric": f"test {results.metric_name}"}

    def show(stat: Stat, name: str, signed: bool = False) -> str:
        if name == "test_metric" and not results.regression:
            return fmt_stat(stat, scale=100.0, decimals=1, signed=signed) + ("pp" if signed else "%")
        return fmt_stat(stat, signed=signed)

    sign = -1.0 if results.higher_is_better(metric) else 1.0
    winner = min(rows, key=lambda r: sign * r.stat(metric).mean)
    where = f"{winner.method} at strength {fmt_strength(winner.cell.strength)}"
    if len(results.lrs) > 1:
        where += f", lr {fmt(winner.cell.lr)}"
    n = len(winner.cell.finished)
    spread = f"mean±std over {n} seed{'s' if n != 1 else ''}"
    base = winner.baseline
    if base is None or not base.finished:
        return f"Best by {names[metric]}: {where}: {show(winner.stat(metric), metric)} ({spread})."
    delta = winner.delta(metric)
    improved = sign * delta.mean < 0
    base_mean = base.stat(metric).mean
    relative = f", {delta.mean / abs(base_mean):+.0%}" if base_mean and math.isfinite(delta.mean) else ""
    lead = (
        f"Best by {names[metric]}: {where}"
        if improved
        else f"No method beat no decay on {names[metric]}; closest: {where}"
    )
    return (
        f"{lead}: {show(winner.stat(metric), metric)} vs {show(base.stat(metric), metric)} with no decay "
        f"(paired change {show(delta, metric, signed=True)}{relative}); {names[other]} "
        f"{show(winner.stat(other), other)} vs {show(base.stat(other), other)} ({spread}; best strength picked on "
        "the test split)."
    )


def summary_markdown(results: StudyResults) -> str:
    header, rows = table(results)
    task = results.task
    counts = results.counts()
    return (
        f"# decaylab study: {task.get('dataset')} / {task.get('model')}\n\n"
        f"{headline(results)}\n\n{markdown_table(header, rows)}\n\n{legend(results)}\n\n"
        f"Runs: {', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}.\n"
    )


def print_summary(results: StudyResults) -> None:
    """Print the summary table and the headline in the terminal."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    header, rows = table(results)
    console = Console()
    if not console.is_terminal:  # logs and pipes: wide enough that the table stays whole
        console = Console(width=160)
    rich_table = Table(
        title=f"{results.task.get('dataset')} / {results.task.get('model')}: each method at its best strength",
        box=box.SIMPLE_HEAD,
    )
    for i, name in enumerate(header):
        rich_table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        rich_table.add_row(*row)
    console.print(rich_table)
    console.print(headline(results))
