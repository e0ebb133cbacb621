"""The SQLite store: atomic epochs, resume bookkeeping, refusal of foreign or corrupt files, CSV, schema docs."""

from __future__ import annotations

import csv
import dataclasses
import re
import sqlite3
from pathlib import Path

import pytest

from decaylab.sandbox.store import APPLICATION_ID, FILENAME, Store, StoreError
from decaylab.sandbox.study import Study
from decaylab.sandbox.train import Run, RunConfig

STUDY = Study.from_dict(
    {
        "task": {"dataset": "moons", "model": "linear", "epochs": 3},
        "grid": {"methods": ["none", "l1"], "strengths": [0.01], "seeds": [0], "lrs": [0.1]},
    }
)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "store-schema.md"


def open_store(directory: Path, study: Study = STUDY) -> Store:
    store = Store.for_study(directory / FILENAME, study.to_dict(), study.fingerprint)
    store.add_runs(study.configurations())
    return store


def epochs_of(config: RunConfig) -> list[tuple]:
    """(record, checkpoint) of every epoch of a real run."""
    run = Run(config)
    out = []
    while not run.finished:
        record = run.train_epoch()
        out.append((record, run.state_bytes()))
    return out


def snapshot(path: Path) -> bytes:
    return path.read_bytes()


def test_new_store_is_marked_and_holds_the_study(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        assert store.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert store.meta()["fingerprint"] == STUDY.fingerprint
        assert store.study() == STUDY.to_dict()
        assert [r.status for r in store.runs()] == ["pending", "pending"]
        store.add_runs(STUDY.configurations())  # idempotent
        assert len(store.runs()) == 2
        assert store.runs()[1].run_config() == STUDY.configurations()[1]


def test_an_epoch_is_stored_with_its_layers_and_checkpoint_and_the_last_one_finishes_the_run(tmp_path: Path) -> None:
    config = STUDY.configurations()[1]
    epochs = epochs_of(config)
    with open_store(tmp_path) as store:
        record, state = epochs[0]
        assert store.record_epoch(config.run_id, record, state, last=False)
        run = store.runs()[1]
        assert (run.status, run.epochs_done) == ("running", 1)
        assert store.checkpoint(config.run_id) == (1, state)
        assert len(store.layers()) == len(record.layers)
        row = store.epochs(config.run_id)[0]
        assert row["test_loss"] == record.test_loss
        assert row["timescale_epochs"] is None
        assert not store.record_epoch(config.run_id, record, state, last=False)  # already stored: ignored
        with pytest.raises(StoreError, match="epoch 3 arrived after epoch 1"):
            store.record_epoch(config.run_id, epochs[2][0], epochs[2][1], last=True)
        store.record_epoch(config.run_id, epochs[1][0], epochs[1][1], last=False)
        store.record_epoch(config.run_id, epochs[2][0], None, last=True)
        run = store.runs()[1]
        assert (run.status, run.epochs_done) == ("finished", 3)
        assert store.checkpoint(config.run_id) is None
        final = store.results()[1]
        assert final["test_metric"] == epochs[2][0].test_metric
        assert final["status"] == "finished"


def test_a_failure_inside_an_epoch_transaction_writes_nothing(tmp_path: Path) -> None:
    config = STUDY.configurations()[1]
    (record, state), (second, state2) = epochs_of(config)[:2]
    with open_store(tmp_path) as store:
        store.record_epoch(config.run_id, record, state, last=False)
        broken = dataclasses.replace(second, layers=(*second.layers, second.layers[0]))  # duplicate key
        with pytest.raises(sqlite3.IntegrityError):
            store.record_epoch(config.run_id, broken, state2, last=False)
        assert len(store.epochs()) == 1
        assert store.runs()[1].epochs_done == 1
        assert store.checkpoint(config.run_id) == (1, state)
        assert len(store.layers()) == len(record.layers)


def test_start_attempt_resumes_from_a_checkpoint_or_clears_partial_epochs(tmp_path: Path) -> None:
    config = STUDY.configurations()[1]
    (record, state), *_ = epochs_of(config)
    with open_store(tmp_path) as store:
        store.record_epoch(config.run_id, record, state, last=False)
        assert store.start_attempt(config.run_id) == (1, state)
        assert store.runs()[1].attempts == 1
        assert len(store.epochs()) == 1
        store.db.execute("DELETE FROM checkpoints")  # e.g. written by a version that kept no checkpoint
        assert store.start_attempt(config.run_id) is None
        assert store.epochs() == []
        assert store.layers() == []
        assert store.runs()[1].epochs_done == 0
        assert store.runs()[1].attempts == 2


def test_diverged_is_final_and_failed_keeps_its_checkpoint(tmp_path: Path) -> None:
    none, l1 = STUDY.configurations()
    (record, state), *_ = epochs_of(l1)
    with open_store(tmp_path) as store:
        store.record_epoch(l1.run_id, record, state, last=False)
        store.record_end(l1.run_id, "failed", "RuntimeError: boom")
        assert store.checkpoint(l1.run_id) is not None
        assert store.runs()[1].status == "failed"
        store.record_end(none.run_id, "diverged", "diverged in epoch 1: loss nan")
        assert store.runs()[0].status == "diverged"
        assert store.runs()[0].message.startswith("diverged")
        with pytest.raises(ValueError, match="status: expected 'diverged' or 'failed'"):
            store.record_end(none.run_id, "finished", "")


def test_a_different_study_is_refused_with_its_differences(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    before = snapshot(tmp_path / FILENAME)
    other = STUDY.override(task={"epochs": 4}, grid={"seeds": [0, 1]})
    with pytest.raises(StoreError, match=r"holds a different study .*grid.seeds: stored \[0\], asked \[0, 1\]"):
        Store.for_study(tmp_path / FILENAME, other.to_dict(), other.fingerprint)
    assert snapshot(tmp_path / FILENAME) == before


def test_a_foreign_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    path.write_text("my thesis, do not delete\n")
    for opener in (lambda: Store.for_study(path, STUDY.to_dict(), STUDY.fingerprint), lambda: Store.read(path)):
        with pytest.raises(StoreError, match=r"is not a SQLite database .*will not overwrite it"):
            opener()
    assert path.read_text() == "my thesis, do not delete\n"


def test_a_foreign_sqlite_database_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE accounts (name TEXT)")
    db.execute("INSERT INTO accounts VALUES ('alice')")
    db.commit()
    db.close()
    before = snapshot(path)
    with pytest.raises(StoreError, match="not a decaylab results store"):
        Store.for_study(path, STUDY.to_dict(), STUDY.fingerprint)
    assert snapshot(path) == before


def test_a_corrupt_store_is_reported_and_left_alone(tmp_path: Path) -> None:
    config = STUDY.configurations()[1]
    with open_store(tmp_path) as store:
        for record, state in epochs_of(config)[:2]:
            store.record_epoch(config.run_id, record, state, last=False)
    path = tmp_path / FILENAME
    data = bytearray(path.read_bytes())
    page = 4096
    data[page : 3 * page] = b"\xa5" * (2 * page)  # trash two b-tree pages after the header page
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"corrupt|not a readable SQLite database"):
        Store.for_study(path, STUDY.to_dict(), STUDY.fingerprint)
    assert path.read_bytes() == bytes(data)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    db = sqlite3.connect(tmp_path / FILENAME)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="schema 99, newer than"):
        Store.read(tmp_path)


def test_read_without_a_store_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no results database here; run `decaylab compare --out DIR` first"):
        Store.read(tmp_path)


def test_csv_export_matches_the_store(tmp_path: Path) -> None:
    none, l1 = STUDY.configurations()
    with open_store(tmp_path) as store:
        for config in (none, l1):
            epochs = epochs_of(config)
            for i, (record, state) in enumerate(epochs):
                store.record_epoch(config.run_id, record, state, last=i == len(epochs) - 1)
        paths = store.export_csv(tmp_path / "csv")
        results = store.results()
    assert [p.name for p in paths] == ["runs.csv", "epochs.csv", "layers.csv"]
    runs = list(csv.DictReader(paths[0].open()))
    assert [r["method"] for r in runs] == ["none", "l1"]
    assert float(runs[1]["test_loss"]) == results[1]["test_loss"]
    epochs = list(csv.DictReader(paths[1].open()))
    assert len(epochs) == 6
    assert epochs[3]["method"] == "l1"
    assert epochs[3]["strength"] == "0.01"
    assert len(list(csv.DictReader(paths[2].open()))) == 6 * 2  # linear model: weight and bias


def test_the_schema_document_lists_every_table_and_column(tmp_path: Path) -> None:
    text = DOCS.read_text()
    with open_store(tmp_path) as store:
        objects = store.db.execute("SELECT name, type FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
        documented_tables = set(re.findall(r"^### (?:View )?`(\w+)`", text, flags=re.MULTILINE))
        assert {name for name, _ in objects} == documented_tables
        for name, kind in objects:
            if kind != "table":
                continue
            section = text.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
            documented = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))
            columns = {row[1] for row in store.db.execute(f"PRAGMA table_info({name})")}
            assert documented == columns, name
