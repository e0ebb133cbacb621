"""Option types and error helpers shared by the subcommands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from decaylab.rules import SCALES
from decaylab.sandbox.common import DTYPES

Scale = StrEnum("Scale", [(s, s) for s in SCALES])
Dtype = StrEnum("Dtype", [(d, d) for d in DTYPES])


def bad_parameter(error: ValueError, flags: dict[str, str]) -> typer.BadParameter:
    """A ValueError whose message starts with ``"<field>: "`` (the project's convention) as a Typer
    error naming the flag that set that field."""
    field, sep, message = str(error).partition(": ")
    flag = flags.get(field.strip()) if sep else None
    if flag is None:
        return typer.BadParameter(str(error))
    return typer.BadParameter(message, param_hint=f"'{flag}'")


def write_outputs(out: Path, files: dict[str, str]) -> list[Path]:
    """Write ``{name: text}`` into directory ``out`` (created if missing); an existing file at ``out`` is refused."""
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} exists and is not a directory", param_hint="'--out'")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        target = out / name
        target.write_text(text)
        written.append(target)
    return written
