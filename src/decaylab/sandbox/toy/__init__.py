"""``decaylab toy``: sandbox methods on a diagonal quadratic, measured and in closed form."""

from decaylab.sandbox.toy.closed_form import (
    CLOSED_FORM_METHODS,
    Recurrence,
    affine_path,
    closed_form_path,
    lucas_u,
    matrix_power_row,
    recurrence_for,
)
from decaylab.sandbox.toy.run import (
    MethodSpec,
    ToyConfig,
    ToyPath,
    ToyResult,
    parse_methods,
    quadratic_loss,
    run_method,
    run_toy,
    summary_rows,
    write_csv,
)

__all__ = [
    "CLOSED_FORM_METHODS",
    "MethodSpec",
    "Recurrence",
    "ToyConfig",
    "ToyPath",
    "ToyResult",
    "affine_path",
    "closed_form_path",
    "lucas_u",
    "matrix_power_row",
    "parse_methods",
    "quadratic_loss",
    "recurrence_for",
    "run_method",
    "run_toy",
    "summary_rows",
    "write_csv",
]
