"""The summary table and headline: the right winner, the right numbers, in every output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from decaylab.report.data import Stat, load_results
from decaylab.report.summary import fmt_stat, headline, print_summary, summary_markdown, table


def test_fmt_stat() -> None:
    assert fmt_stat(Stat(0.25, 0.0125, 3)) == "0.250±0.013"
    assert fmt_stat(Stat(0.9451, 0.003, 3), scale=100, decimals=1) == "94.5±0.3"
    assert fmt_stat(Stat(-0.07, 0.01, 2), signed=True) == "-0.070±0.010"
    assert fmt_stat(Stat(0.07, float("nan"), 1), signed=True) == "+0.070"
    assert fmt_stat(Stat(float("nan"), float("nan"), 0)) == "—"


def test_table_has_each_method_at_its_best_strength(lr_study: Path, query: Callable) -> None:
    header, rows = table(load_results(lr_study))
    assert header[:3] == ["method", "strength", "lr"]
    assert [r[0] for r in rows] == ["none", "coupled_l2", "l1"]
    for row in rows[1:]:
        means = query(
            lr_study,
            f"SELECT lr, strength, AVG(test_loss), AVG(test_metric) FROM results WHERE method = '{row[0]}' "
            "GROUP BY lr, strength ORDER BY 3 LIMIT 1",
        )[0]
        assert row[1] == f"{means[1]:g}"
        assert row[2] == f"{means[0]:.3g}"
        assert row[3].startswith(f"{100 * means[3]:.1f}")
        assert row[4].startswith(f"{means[2]:.3f}")
        assert row[-1] == "2/0"


def test_headline_names_the_winner_and_the_paired_change(lr_study: Path, query: Callable) -> None:
    results = load_results(lr_study)
    text = headline(results)
    rows = query(
        lr_study,
        "SELECT method, lr, strength, AVG(test_loss) FROM results WHERE method != 'none' "
        "GROUP BY method, lr, strength ORDER BY 4 LIMIT 1",
    )
    method, lr, strength, mean = rows[0]
    base = query(lr_study, f"SELECT AVG(test_loss) FROM results WHERE method = 'none' AND lr = {lr}")[0][0]
    lead = "Best by test loss" if mean < base else "No method beat no decay on test loss"
    assert text.startswith(lead)
    assert f"{method} at strength {strength:g}, lr {lr:g}: {mean:.3f}" in text
    assert f"vs {base:.3f}" in text
    assert "over 2 seeds" in text
    assert f"{(mean - base):+.3f}" in text


def test_markdown_and_terminal_show_the_same_table(lr_study: Path, capsys: pytest.CaptureFixture) -> None:
    results = load_results(lr_study)
    markdown = summary_markdown(results)
    _header, rows = table(results)
    assert markdown.startswith("# decaylab study: moons / mlp")
    for row in rows:
        assert "| " + " | ".join(row) + " |" in markdown
    print_summary(results)
    out = capsys.readouterr().out
    for row in rows:
        assert all(cell in out for cell in row)
    assert headline(results)[:40] in out.replace("\n", " ")


def test_regression_summary_reports_r2_and_recovered_features(sparse_study: Path, query: Callable) -> None:
    results = load_results(sparse_study)
    header, rows = table(results)
    assert "test R²" in header
    assert "recovered" in header
    proximal = next(r for r in rows if r[0] == "proximal_l1")
    recovered = query(sparse_study, "SELECT AVG(recovered) FROM results WHERE method = 'proximal_l1' GROUP BY strength")
    assert any(proximal[header.index("recovered")].startswith(f"{r[0]:.1f}") for r in recovered)
    assert np.isfinite(results.best("proximal_l1").stat("test_metric").mean)
