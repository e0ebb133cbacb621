"""Output formats: JSON, CSV, Markdown and the terminal table carry the same rows and a summary."""

from __future__ import annotations

import csv
import io
import json

import pytest

from decaylab.audit.formats import FORMATS, render, summarize, to_markdown
from decaylab.audit.result import AuditResult


@pytest.fixture
def results() -> list[AuditResult]:
    return [
        AuditResult(
            name="pkg.Good",
            label="decoupled L2 (scaled by lr)",
            kind="decoupled L2",
            scale="lr",
            strength_multiplier=1.0,
            momentum="no",
            no_grad="not touched",
            default_strength="0.01",
            decays_by_default=True,
            why="a | b",
            notes=["note one"],
        ),
        AuditResult(
            name="pkg.Bad",
            label="constant shift (scaled by lr)",
            kind="constant shift",
            scale="lr",
            surprises=["constant shift: a bug", "strength is 2x the nominal weight_decay"],
        ),
        AuditResult.not_probed("pkg.Broken", "cannot be probed: boom"),
    ]


def test_summary_counts_labels_and_lists_surprises(results):
    summary = summarize(results)
    assert summary.total == 3
    assert summary.counts == {
        "decoupled L2 (scaled by lr)": 1,
        "constant shift (scaled by lr)": 1,
        "not probed": 1,
    }
    assert summary.surprising == {"pkg.Bad": ["constant shift: a bug", "strength is 2x the nominal weight_decay"]}
    assert summary.not_probed == {"pkg.Broken": "cannot be probed: boom"}


def test_json_round_trips_every_row(results):
    document = json.loads(render(results, "json"))
    assert {"versions", "settings", "summary", "results"} <= set(document)
    assert [AuditResult.from_dict(r) for r in document["results"]] == results
    assert document["settings"]["lrs"] == [0.01, 0.03]
    assert document["summary"]["total"] == 3


def test_csv_has_one_row_per_optimizer(results):
    rows = list(csv.DictReader(io.StringIO(render(results, "csv"))))
    assert [r["name"] for r in rows] == ["pkg.Good", "pkg.Bad", "pkg.Broken"]
    assert rows[0]["why"] == "a | b"
    assert rows[1]["surprises"] == "constant shift: a bug | strength is 2x the nominal weight_decay"


def test_markdown_has_summary_on_top_and_escapes_pipes(results):
    text = to_markdown(results, title="T", preamble="P")
    assert text.index("## Summary") < text.index("## Optimizers")
    assert "| decoupled L2 (scaled by lr) | 1 |" in text
    assert "**Surprising behaviour (1 optimizers):**" in text
    assert "- constant shift: every weight moves by the same amount, whatever its sign (a bug) (1): `pkg.Bad`" in text
    assert "- strength differs from the nominal weight_decay (1): `pkg.Bad` (strength is 2x the nominal" in text
    assert "a \\| b" in text
    assert "- `pkg.Broken`: cannot be probed: boom" in text


def test_table_lists_every_optimizer(results):
    text = render(results, "table")
    for name in ("pkg.Good", "pkg.Bad", "pkg.Broken"):
        assert name in text
    assert "surprising: 1 (pkg.Bad)" in text


def test_unknown_format_is_named():
    assert FORMATS == ("table", "json", "csv", "markdown")
    with pytest.raises(ValueError, match="format: expected one of table, json, csv, markdown, got 'xml'"):
        render([], "xml")
