"""The Typer application every subcommand module registers itself on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="decaylab",
    help="decaylab: see what weight decay really does. Probe one step, trace toy problems, train and "
    "compare methods on real data, and audit the optimizers you have installed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """decaylab: see what weight decay really does."""  # keeps subcommands required even with one registered
