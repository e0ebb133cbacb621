"""Studies: expansion into runs, TOML in and out, overrides, --quick, the default study, and errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decaylab.sandbox.study import DEFAULT_STUDY, Study, default_study, to_toml

SMALL = {
    "task": {"dataset": "moons", "model": "linear", "epochs": 2},
    "grid": {
        "methods": ["none", "coupled_l2", "l1"],
        "strengths": [1e-3, 1e-2],
        "strengths_by_method": {"l1": [1e-4]},
        "seeds": [0, 1],
        "lrs": [0.05, 0.1],
    },
}


def test_expansion_order_and_count() -> None:
    study = Study.from_dict(SMALL)
    configs = study.configurations()
    # per lr: none once + coupled 2 strengths + l1 1 strength, times 2 seeds
    assert len(configs) == 2 * (1 + 2 + 1) * 2
    keys = [(c.lr, c.method, c.strength, c.seed) for c in configs]
    assert keys[:8] == [
        (0.05, "none", 0.0, 0),
        (0.05, "none", 0.0, 1),
        (0.05, "coupled_l2", 1e-3, 0),
        (0.05, "coupled_l2", 1e-3, 1),
        (0.05, "coupled_l2", 1e-2, 0),
        (0.05, "coupled_l2", 1e-2, 1),
        (0.05, "l1", 1e-4, 0),
        (0.05, "l1", 1e-4, 1),
    ]
    assert len({c.run_id for c in configs}) == len(configs)
    assert all(c.dataset == "moons" and c.epochs == 2 for c in configs)


def test_toml_round_trip_keeps_the_fingerprint(tmp_path: Path) -> None:
    study = Study.from_dict(SMALL)
    path = tmp_path / "study.toml"
    path.write_text(study.to_toml())
    again = Study.from_toml(path)
    assert again == study
    assert again.fingerprint == study.fingerprint
    assert tomllib.loads(study.to_toml()) == study.to_dict()


@given(
    st.dictionaries(
        st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
        st.one_of(
            st.floats(allow_nan=False),
            st.integers(-(2**62), 2**62),
            st.text(max_size=8),
            st.booleans(),
            st.lists(st.floats(allow_nan=False), max_size=3),
        ),
        max_size=5,
    )
)
def test_to_toml_writes_what_tomllib_reads(table: dict) -> None:
    assert tomllib.loads(to_toml({"section": table})) == ({"section": table} if table else {})


def test_fingerprint_changes_with_the_task_and_the_grid() -> None:
    study = Study.from_dict(SMALL)
    assert study.override(task={"epochs": 3}).fingerprint != study.fingerprint
    assert study.override(grid={"seeds": [0, 1, 2]}).fingerprint != study.fingerprint
    assert study.override(task={"epochs": 2}).fingerprint == study.fingerprint


def test_quick_keeps_methods_and_lrs_and_shrinks_the_rest() -> None:
    study = default_study()
    quick = study.quick()
    assert quick.methods == study.methods
    assert quick.lrs == study.lrs
    assert quick.task.epochs == 3
    assert quick.seeds == (0, 1)
    for method in study.methods[1:]:
        full = study.strengths_for(method)
        assert quick.strengths_for(method) == (min(full), max(full))
    assert len(quick.configurations()) < len(study.configurations()) / 2


def test_default_study_is_the_issue_s_comparison() -> None:
    study = default_study()
    assert study.task.dataset == "digits"
    assert study.task.model == "cnn"
    assert study.methods == ("none", "coupled_l2", "decoupled_l2", "l1", "proximal_l1", "penalty_l2")
    assert study.seeds == (0, 1, 2)
    assert all(len(study.strengths_for(m)) >= 3 for m in study.methods[1:])
    assert len(study.configurations()) == 3 * (1 + 5 * 4)
    assert Study.from_dict(DEFAULT_STUDY) == study


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tasks": {}}, "tasks: unknown section; valid sections: task, grid, report"),
        ({"task": {"epoch": 2}}, r"epoch: unknown \[task\] option; valid options: dataset"),
        ({"task": {"lr": 0.1}}, r"lr: a grid axis; set it as \[grid\] lrs = \[...\]"),
        ({"task": {"seed": 1}}, r"seed: a grid axis; set it as \[grid\] seeds"),
        ({"grid": {"method": ["l1"]}}, r"method: unknown \[grid\] option; valid options: methods"),
        ({"grid": {"methods": ["l3"]}}, "methods: unknown method 'l3'; choose from none, coupled_l2"),
        ({"grid": {"methods": []}}, "methods: expected at least one value"),
        ({"grid": {"methods": "l1"}}, "methods: expected a list"),
        ({"grid": {"methods": ["l1", "l1"]}}, "methods: 'l1' appears more than once"),
        ({"grid": {"strengths": [0.0]}}, "strengths: expected a finite number > 0"),
        ({"grid": {"strengths": ["big"]}}, "strengths: expected a number, got 'big'"),
        ({"grid": {"seeds": [-1]}}, "seeds: expected an integer >= 0"),
        ({"grid": {"lrs": [0.0]}}, "lrs: expected a finite number > 0"),
        ({"grid": {"strengths_by_method": {"none": [1.0]}}}, "strengths_by_method: 'none' has no strength"),
        ({"grid": {"strengths_by_method": {"l1": [-1.0]}}}, r"strengths_by_method.l1: expected a finite number > 0"),
        ({"report": {"rank_by": "speed"}}, "rank_by: unknown ranking 'speed'; choose from test_loss, test_metric"),
        ({"report": {"rank": "test_loss"}}, r"rank: unknown \[report\] option"),
        ({"task": {"dataset": "moons", "model": "cnn"}}, "model: 'cnn' needs image inputs"),
    ],
)
def test_bad_studies_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Study.from_dict(data)


def test_from_toml_reports_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="config: no such file"):
        Study.from_toml(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[task\n")
    with pytest.raises(ValueError, match="is not valid TOML"):
        Study.from_toml(bad)
