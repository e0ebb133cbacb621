"""``decaylab report RUN_DIR``: rebuild a study's report from its SQLite store alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from decaylab.cli._app import app
from decaylab.cli.train import fail
from decaylab.sandbox.store import StoreError


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A study directory written by `decaylab compare` or `train --out`.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the report (default RUN_DIR/report).")
    ] = None,
) -> None:
    """Rebuild the report of a study from its results store, and print its summary table.

    Writes report.html (self-contained: figures embedded), the figures as PNG, summary.md, and the
    store exported as runs.csv (final metrics per run), epochs.csv and layers.csv.
    """
    from decaylab.report import build_report, print_summary

    if not run_dir.exists():
        fail(f"RUN_DIR: {run_dir} does not exist")
    try:
        built = build_report(run_dir, out)
    except StoreError as error:
        fail(str(error), code=1)
    print_summary(built.results)
    typer.echo(f"report: {built.html}")
