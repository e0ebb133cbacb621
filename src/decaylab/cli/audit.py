"""``decaylab audit TARGET...``: what weight_decay really does in the optimizers you have installed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from decaylab.audit.catalog import write_atomically
from decaylab.audit.formats import render
from decaylab.audit.runner import DEFAULT_TIMEOUT, run_audit
from decaylab.audit.settings import ProbeSettings
from decaylab.audit.targets import INSTALLED_MODULES, TargetError, resolve_targets
from decaylab.cli._app import app

TARGET_HELP = (
    "A class path (torch.optim.AdamW, or torch.optim.RAdam(decoupled_weight_decay=True) to fix arguments) "
    "or a module (torch_optimizer, pytorch_optimizer, decaylab): every Optimizer subclass in it."
)


def output_format(as_json: bool, as_csv: bool, as_markdown: bool) -> str:
    """The one format the flags ask for (``table`` when none); two or more is an error naming them."""
    chosen = [name for name, flag in (("json", as_json), ("csv", as_csv), ("markdown", as_markdown)) if flag]
    if len(chosen) > 1:
        raise typer.BadParameter(
            f"choose at most one of --json, --csv, --markdown (got --{' and --'.join(chosen)})", param_hint="format"
        )
    return chosen[0] if chosen else "table"


@app.command("audit")
def audit_command(
    targets: Annotated[list[str] | None, typer.Argument(help=TARGET_HELP, show_default=False)] = None,
    installed: Annotated[
        bool, typer.Option("--installed", help=f"Audit every importable one of: {', '.join(INSTALLED_MODULES)}.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Write JSON (summary, probe settings, rows).")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write CSV, one row per optimizer.")] = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Write Markdown with a summary on top.")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file, not standard output.")] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=0, help="Worker processes (0: in this process, no time limit).")
    ] = 2,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds per optimizer before it is reported as hanging.")
    ] = DEFAULT_TIMEOUT,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no messages.")] = False,
) -> None:
    """Classify what weight_decay does in each optimizer, by experiment, with the measured reasons.

    Labels: no decay, coupled L2, adaptive-coupled, decoupled L2, L1/sign, proximal L1, constant shift, L2 toward initial weights (the decoupled kinds with their scale: by lr, by lr/initial_lr, or not scaled), other (with the numbers), not probed (with the reason).
    """
    fmt = output_format(as_json, as_csv, as_markdown)
    try:
        resolved, missing = resolve_targets(targets or [], installed=installed)
    except TargetError as error:
        raise typer.BadParameter(str(error), param_hint="TARGET") from None
    if not quiet:
        for note in missing:
            typer.echo(f"note: {note}", err=True)
    settings = ProbeSettings()
    results = run_audit(resolved, settings=settings, jobs=jobs, timeout=timeout, progress=False if quiet else None)
    text = render(results, fmt, settings)
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomically(out, text)
        if not quiet:
            typer.echo(f"wrote {out} ({len(results)} optimizers)", err=True)
