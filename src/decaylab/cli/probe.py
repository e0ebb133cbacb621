"""``decaylab probe``: one step of every method on the seed's tiny model, as a table (or JSON / CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from decaylab.cli._app import app
from decaylab.cli._options import Dtype, Scale, bad_parameter, write_outputs
from decaylab.sandbox.probe import (
    SOURCES,
    ParamChange,
    ProbeResult,
    ProbeRow,
    ProbeSettings,
    format_change,
    format_number,
    run_all,
)

PROBE_FLAGS = {
    "lr": "--lr",
    "weight_decay": "--weight-decay",
    "conv1_weight": "--conv1-weight",
    "conv1_bias": "--conv1-bias",
    "fc_weight": "--fc-weight",
    "fc_bias": "--fc-bias",
    "loss_scale": "--loss-scale",
    "scales": "--scale",
    "optimizer": "--optimizer",
}


def _method_lines(row: ProbeRow, dtype: str) -> list[Text]:
    lines = [Text(row.label, style="bold"), Text(row.rule, style="dim")]
    if row.penalty is not None:
        lines.append(Text(f"penalty {format_number(row.penalty, dtype)}"))
    if row.error is not None:
        lines.append(Text(row.error, style="red"))
    return lines


def _param_lines(p: ParamChange, dtype: str) -> list[tuple[str, ...]]:
    """``(param, before, grad, after, change)`` texts: one line when every entry reads the same
    (``fc.weight [2]``), else one line per entry (``fc.weight[0]``, ``fc.weight[1]``)."""
    entries = []
    for before, grad, grad_after, after in zip(p.before, p.grad, p.grad_after, p.after, strict=True):
        grad_text = format_number(grad, dtype)
        if format_number(grad_after, dtype) != grad_text:  # the optimizer wrote to .grad
            grad_text += f" -> {format_number(grad_after, dtype)}"
        entries.append(
            (
                format_number(before, dtype),
                grad_text,
                format_number(after, dtype),
                format_change(before, after, dtype),
            )
        )
    if len(set(entries)) == 1:
        return [(p.name if len(entries) == 1 else f"{p.name} [{len(entries)}]", *entries[0])]
    return [(f"{p.name}[{i}]", *entry) for i, entry in enumerate(entries)]


def probe_tables(result: ProbeResult) -> list[Table]:
    """One table per source (decaylab, torch.optim, third-party), a block of lines per method: its
    name, rule, penalty (if any) and error (if any) down the first column, one line per parameter."""
    dtype = result.settings.dtype
    tables = []
    for source in SOURCES:
        rows = [r for r in result.rows if r.source == source]
        if not rows:
            continue
        table = Table(title=source, title_justify="left", title_style="bold", padding=(0, 1))
        table.add_column("method", overflow="fold", min_width=16)
        table.add_column("param", no_wrap=True)
        for name in ("before", "grad", "after", "change"):
            table.add_column(name, justify="right", no_wrap=True, style="bold" if name == "after" else None)
        for row in rows:
            methods = _method_lines(row, dtype)
            params = [line for p in row.params for line in _param_lines(p, dtype)]
            height = max(len(methods), len(params))
            for i in range(height):
                method = methods[i] if i < len(methods) else ""
                param = params[i] if i < len(params) else ("",) * 5
                table.add_row(method, *param, end_section=i == height - 1)
        tables.append(table)
    return tables


def _header(result: ProbeResult) -> str:
    s = result.settings
    if s.loss_scale == 0:
        loss = "loss = 0 x cross-entropy (the seed's zero gradient: only decay moves weights)"
    else:
        loss = f"loss = {s.loss_scale:g} x cross-entropy of the seed's input (ones, label 1)"
    return (
        f"start: conv1.weight {s.conv1_weight:g}, conv1.bias {s.conv1_bias:g}, "
        f"fc.weight {s.fc_weight:g} (2 entries), fc.bias {s.fc_bias:g}\n"
        f"one step, lr {s.lr:g}, lam = weight_decay {s.weight_decay:g}, {s.dtype}\n"
        f"{loss}; penalty methods add lam*sum|w|^p\n"
        "s = decoupled scale (none: 1; lr: the lr); change = after - before"
    )


@app.command("probe")
def probe(
    lr: Annotated[float, typer.Option("--lr", help="Learning rate (> 0).")] = 0.1,
    weight_decay: Annotated[float, typer.Option("--weight-decay", "--wd", help="Strength lam (>= 0).")] = 0.1,
    conv1_weight: Annotated[float, typer.Option(help="Start value of conv1.weight.")] = 1.0,
    conv1_bias: Annotated[float, typer.Option(help="Start value of conv1.bias.")] = 0.0,
    fc_weight: Annotated[float, typer.Option(help="Start value of both fc.weight entries.")] = -1.5,
    fc_bias: Annotated[float, typer.Option(help="Start value of the one-element fc.bias.")] = 0.0,
    loss_scale: Annotated[
        float,
        typer.Option(help="Multiplies the cross-entropy loss: 0 (the seed) gives a zero gradient; 1 the real loss's."),
    ] = 0.0,
    scale: Annotated[
        list[Scale] | None,
        typer.Option(
            "--scale", help="Decoupled scale convention(s) for the SGDW rows; repeat for several. [default: none]"
        ),
    ] = None,
    optimizer: Annotated[
        list[str] | None,
        typer.Option(
            "--optimizer",
            help="Also probe an installed optimizer, given as module.Class (e.g. torch_optimizer.SGDW), built as "
            "Class(params, lr=..., weight_decay=...). Repeatable.",
        ),
    ] = None,
    dtype: Annotated[Dtype, typer.Option(help="Parameter dtype (the seed: float32).")] = Dtype.float32,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of the table.")] = False,
    csv_output: Annotated[
        bool, typer.Option("--csv", help="Print CSV (one line per entry) instead of the table.")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Also write probe.json and probe.csv into this directory.")] = None,
) -> None:
    """Seed 1 as a table: one step of every method on a tiny model with known weights.

    Shows, per method, each parameter before the step, its gradient, after the step and the change: decaylab's own optimizers (coupled SGD, SGDW under every rule, AdamW, the L2 and L1 penalties stepped by torch.optim.SGD), torch.optim's SGD, Adam and AdamW, and any installed optimizer named with --optimizer.

    With no options this is the seed notebook: coupled SGD takes conv1.weight 1 -> 0.99, SGDW's decoupled L2 1 -> 0.9, its L1 fc.weight -1.5 -> -1.4, and the L2 penalty is 0.55 with gradients 0.2 / -0.3.
    """
    if json_output and csv_output:
        raise typer.BadParameter("choose one of --json and --csv", param_hint="'--json' / '--csv'")
    try:
        settings = ProbeSettings(
            lr=lr,
            weight_decay=weight_decay,
            conv1_weight=conv1_weight,
            conv1_bias=conv1_bias,
            fc_weight=fc_weight,
            fc_bias=fc_bias,
            loss_scale=loss_scale,
            scales=tuple(s.value for s in scale) if scale else ("none",),
            dtype=dtype.value,
        )
        result = run_all(settings, optimizer or ())
    except ValueError as error:
        raise bad_parameter(error, PROBE_FLAGS) from None
    if out is not None:
        written = write_outputs(out, {"probe.json": result.to_json(), "probe.csv": result.to_csv()})
    if json_output:
        typer.echo(result.to_json())
    elif csv_output:
        typer.echo(result.to_csv(), nl=False)
    else:
        console = Console()
        console.print(_header(result), highlight=False)
        for table in probe_tables(result):
            console.print(table)
    if out is not None:
        typer.echo("wrote " + ", ".join(str(p) for p in written), err=json_output or csv_output)
