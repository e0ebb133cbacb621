"""report.html: self-contained, rebuilt from the store alone, and rendered by a real browser."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from decaylab.report import build_report
from decaylab.sandbox.store import FILENAME, StoreError

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IMAGE_CHECK = """<script>
window.addEventListener('load', function () {
  var images = Array.from(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).map(function (i) { return i.alt; });
  var out = document.createElement('pre');
  out.id = 'image-check';
  out.textContent = 'IMAGES ' + images.length + ' BROKEN ' + JSON.stringify(broken) + ' TABLES ' + document.querySelectorAll('table').length;
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def report(lr_study: Path, tmp_path_factory: pytest.TempPathFactory):
    return build_report(lr_study, tmp_path_factory.mktemp("report"))


def test_report_writes_html_summary_figures_and_csv(report) -> None:
    names = {p.name for p in report.directory.iterdir()}
    assert {"report.html", "summary.md", "runs.csv", "epochs.csv", "layers.csv"} <= names
    assert {p.name for p in report.figures} <= names
    assert len(report.figures) >= 7


def test_html_is_self_contained_with_every_figure_inlined(report) -> None:
    page = report.html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", page)
    assert "<link" not in page
    assert "<script" not in page
    sources = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(sources) == len(report.figures) == page.count("<img")
    inlined = sorted(base64.b64decode(s) for s in sources)
    assert inlined == sorted(p.read_bytes() for p in report.figures)
    assert "Each method at its best strength" in page
    assert "coupled_l2" in page


def test_the_report_is_rebuilt_from_the_store_alone(lr_study: Path, report, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(lr_study / FILENAME, bare / FILENAME)
    again = build_report(bare)
    assert again.directory == bare / "report"
    assert again.summary.read_text() == report.summary.read_text()
    assert (again.directory / "runs.csv").read_text() == (report.directory / "runs.csv").read_text()


def test_a_missing_or_foreign_store_is_reported(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no results database here"):
        build_report(tmp_path)
    (tmp_path / FILENAME).write_text("not a database")
    with pytest.raises(StoreError, match="is not a SQLite database"):
        build_report(tmp_path)
    assert (tmp_path / FILENAME).read_text() == "not a database"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (the test setup installs Debian's chromium)")
def test_chromium_renders_the_report_and_loads_every_image(report, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    probe.write_text(report.html.read_text().replace("</body>", IMAGE_CHECK + "</body>"))
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                probe.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r"IMAGES (\d+) BROKEN (\[.*?\]) TABLES (\d+)", result.stdout)
    assert found, result.stdout[-2000:]
    assert int(found.group(1)) == len(report.figures)
    assert found.group(2) == "[]"
    assert int(found.group(3)) >= 3
