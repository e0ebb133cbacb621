"""``decaylab`` command line. Each subcommand lives in its own module and registers on ``app``."""

from __future__ import annotations

import importlib

from decaylab.cli._app import app

SUBCOMMAND_MODULES = ("probe", "toy", "train", "compare", "report", "audit")

for _module in SUBCOMMAND_MODULES:
    try:
        importlib.import_module(f"decaylab.cli.{_module}")
    except ModuleNotFoundError as error:  # a subcommand not written yet
        if error.name != f"decaylab.cli.{_module}":
            raise


def main() -> None:
    app()


__all__ = ["app", "main"]
