"""Reports built from a study's store alone: PNG figures, ``summary.md``, a self-contained
``report.html``, CSV exports, and the same summary table in the terminal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from decaylab.report.data import StudyResults, load_results
from decaylab.report.html import write_html
from decaylab.report.plots import draw_all
from decaylab.report.summary import headline, print_summary, summary_markdown
from decaylab.sandbox.store import Store

REPORT_DIR = "report"


@dataclass(frozen=True)
class Report:
    """The files a report wrote; ``results`` is what they were built from."""

    directory: Path
    html: Path
    summary: Path
    figures: list[Path]
    csv: list[Path]
    results: StudyResults


def build_report(study_dir: Path, out: Path | None = None) -> Report:
    """Rebuild the report of the study in ``study_dir`` from its store, into ``out``
    (default ``study_dir/report``). Raises :class:`~decaylab.sandbox.store.StoreError` if the store
    is missing or unusable."""
    study_dir = Path(study_dir)
    if study_dir.is_file():  # the database itself was named
        study_dir = study_dir.parent
    results = load_results(study_dir)
    out = Path(out) if out is not None else study_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    figures = draw_all(results, out)
    summary = out / "summary.md"
    summary.write_text(summary_markdown(results), encoding="utf-8")
    with Store.read(study_dir) as store:
        csv = store.export_csv(out)
    html = write_html(results, figures, out / "report.html")
    return Report(out, html, summary, [p for p, _ in figures], csv, results)


__all__ = ["Report", "StudyResults", "build_report", "headline", "load_results", "print_summary"]
