"""``decaylab toy``: methods on a diagonal quadratic, measured step by step and in closed form."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from decaylab.cli._app import app
from decaylab.cli._options import Dtype, Scale, bad_parameter, write_outputs
from decaylab.sandbox.common import json_safe
from decaylab.sandbox.methods import BASES, METHODS
from decaylab.sandbox.toy.run import ToyConfig, ToyResult, parse_methods, run_toy, summary_rows, write_csv

Base = StrEnum("Base", [(b, b) for b in BASES])

TOY_FLAGS = {
    "methods": "--methods",
    "curvatures": "--curvatures",
    "init": "--init",
    "lr": "--lr",
    "steps": "--steps",
    "momentum": "--momentum",
    "base": "--base",
    "scale": "--scale",
    "dtype": "--dtype",
}


def parse_numbers(name: str, text: str) -> tuple[float, ...]:
    """``"0.1,2"`` -> ``(0.1, 2.0)``; a ValueError ``"<name>: ..."`` names the item that is not a number."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"{name}: expected comma-separated numbers, got {text!r}")
    values = []
    for item in items:
        try:
            values.append(float(item))
        except ValueError:
            raise ValueError(
                f"{name}: {item!r} is not a number (expected comma-separated numbers, e.g. 0.1,2)"
            ) from None
    return tuple(values)


SUMMARY_CAPTION = (
    "cf error: max |measured - closed form| over the steps the closed form covers (cf steps). "
    "Sign-L1 rules (l1, penalty_l1) are exact until a weight's sign flips; proximal rules with "
    "momentum until the threshold first sets a weight to exactly 0; an Adam base has none."
)


def _summary_table(result: ToyResult) -> Table:
    """Method, lam, final weights, final loss, closed-form error and reach; sized for 80 columns
    (only the last column wraps)."""
    dim = result.config.dim
    table = Table(
        title="after the last step",
        title_justify="left",
        caption=SUMMARY_CAPTION,
        caption_justify="left",
        box=None,
        pad_edge=False,
        padding=(0, 1),
        header_style="bold underline",
    )
    table.add_column("method", no_wrap=True)
    table.add_column("lam", justify="right", no_wrap=True)
    weight_columns = [f"w_{i}" for i in range(1, dim + 1)] if dim <= 3 else [f"w_1..w_{dim}"]
    for name in weight_columns:
        table.add_column(name, justify="right", no_wrap=dim <= 3)
    table.add_column("loss", justify="right", no_wrap=True)
    table.add_column("cf error", justify="right", no_wrap=True)
    table.add_column("cf steps", no_wrap=True)
    for row in summary_rows(result):
        weights = [f"{v:.6g}" for v in row["final_weights"]]
        if dim > 3:
            weights = [", ".join(weights)]
        error = row["closed_form_error"]
        table.add_row(
            str(row["method"]),
            "-" if row["method"] == "none" else f"{row['strength']:g}",
            *weights,
            f"{row['final_loss']:.3g}" + (" (diverged)" if row["diverged"] else ""),
            "-" if error is None else f"{error:.0e}",
            _reach(row, result.config.steps),
        )
    return table


def _reach(row: dict, steps: int) -> str:
    if row["closed_form_steps"] == 0:
        return "none"
    return "all" if row["closed_form_steps"] == steps + 1 else f"0-{row['closed_form_steps'] - 1} *"


def _notes(result: ToyResult) -> list[str]:
    """One line per method whose closed form is partial or missing."""
    return [
        f"* {row['method']}: {row['closed_form']}"
        for row in summary_rows(result)
        if row["closed_form_steps"] != result.config.steps + 1
    ]


def _header(config: ToyConfig) -> str:
    curvatures = ", ".join(f"{c:g}" for c in config.curvatures)
    start = ", ".join(f"{w:g}" for w in config.init)
    return (
        f"loss = sum_i c_i/2 w_i^2, c = ({curvatures}), start w = ({start})\n"
        f"{config.steps} steps of {config.base}: lr {config.lr:g}, momentum {config.momentum:g}, "
        f"decoupled scale {config.scale}, {config.dtype}"
    )


@app.command("toy")
def toy(
    methods: Annotated[
        str,
        typer.Option(
            help="Comma-separated methods, each optionally with its own strength as name:lam "
            f"(e.g. none,coupled_l2,l1:0.05). Choose from: {', '.join(METHODS)}."
        ),
    ] = "none,coupled_l2",
    strength: Annotated[float, typer.Option(help="Strength lam of every method not given one (>= 0).", min=0)] = 0.01,
    curvatures: Annotated[
        str, typer.Option(help="Comma-separated curvatures c_i >= 0 of loss = sum c_i/2 w_i^2.")
    ] = "0.1,2",
    init: Annotated[str, typer.Option(help="Comma-separated start point, one value per curvature.")] = "1,1",
    lr: Annotated[float, typer.Option(help="Learning rate (> 0).")] = 0.01,
    steps: Annotated[int, typer.Option(help="Number of steps (>= 1).", min=1)] = 1000,
    momentum: Annotated[float, typer.Option(help="Heavy-ball momentum in [0, 1) (base sgd).")] = 0.0,
    base: Annotated[Base, typer.Option(help="Base optimizer every method is built on.")] = Base.sgd,
    scale: Annotated[Scale, typer.Option(help="Scale convention of the decoupled methods.")] = Scale.lr,
    dtype: Annotated[
        Dtype, typer.Option(help="Parameter dtype (float64: the closed form matches to ~1e-14).")
    ] = Dtype.float64,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON instead of the table.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write toy_steps.csv, toy_summary.json and the PNG plots into this directory.")
    ] = None,
) -> None:
    """Seed 2 generalized: methods on a diagonal quadratic, measured path beside the closed form.

    Trains every method from the same start on loss = sum c_i/2 w_i^2 and prints the final weights and loss, and how far the measured path is from its exact closed form. --out adds the per-step CSV and plots: the paths over the loss contours, the loss per step (log scale), each weight per step.

    With no options this is seed 2: no decay vs coupled L2 (lam 0.01) on w1^2/20 + w2^2 from (1, 1), lr 0.01, 1000 steps. Every method on an SGD base (with or without momentum) has an exact closed form per coordinate; the L1 rules while the weight keeps its sign.
    """
    try:
        config = ToyConfig(
            methods=parse_methods(methods, strength),
            curvatures=parse_numbers("curvatures", curvatures),
            init=parse_numbers("init", init),
            lr=lr,
            steps=steps,
            momentum=momentum,
            base=base.value,
            scale=scale.value,
            dtype=dtype.value,
        )
    except ValueError as error:
        raise bad_parameter(error, TOY_FLAGS) from None
    result = run_toy(config)
    summary = summary_rows(result)
    if out is not None:
        written = write_outputs(out, {"toy_summary.json": json.dumps(json_safe(summary), indent=2, allow_nan=False)})
        written.append(write_csv(result, out / "toy_steps.csv"))
        from decaylab.sandbox.toy.plots import write_plots  # matplotlib only when plots are asked for

        written += write_plots(result, out)
    if json_output:
        typer.echo(json.dumps(json_safe(summary), indent=2, allow_nan=False))
    else:
        console = Console()
        console.print(_header(config), highlight=False)
        console.print(_summary_table(result))
        for line in _notes(result):
            console.print(line, highlight=False)
    if out is not None:
        typer.echo("wrote " + ", ".join(str(p) for p in written), err=json_output)
