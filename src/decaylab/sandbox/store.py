"""The results store: one SQLite file per study directory (schema: ``docs/store-schema.md``).

Write discipline: every finished epoch is one transaction (its metrics, its per-layer statistics,
the run's checkpoint and the run's progress), so a process killed at any moment leaves the store at
the end of some epoch, never in between. A finished run's checkpoint is deleted in the same
transaction that marks it finished.

Safety: a file that is not a SQLite database, a SQLite database that is not decaylab's, a corrupt
one, one written by a newer schema, or one holding a different study is reported
(:class:`StoreError`), never modified.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from decaylab.sandbox.measures import LayerStats
from decaylab.sandbox.train import EpochRecord, RunConfig

FILENAME = "results.sqlite"
APPLICATION_ID = 0x44434C42  # "DCLB": marks the file as decaylab's (PRAGMA application_id)
SCHEMA_VERSION = 1  # PRAGMA user_version
SQLITE_HEADER = b"SQLite format 3\x00"
STATUSES: tuple[str, ...] = ("pending", "running", "finished", "diverged", "failed")
EPOCH_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(EpochRecord) if f.name != "layers")
LAYER_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LayerStats))
RUN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "position",
    "method",
    "strength",
    "lr",
    "seed",
    "config",
    "status",
    "epochs_done",
    "attempts",
    "message",
    "started_at",
    "updated_at",
    "wall_s",
)


def _epoch_column_type(name: str) -> str:
    annotation = {f.name: f.type for f in fields(EpochRecord)}[name]
    nullable = "None" in str(annotation)
    base = "INTEGER" if str(annotation).startswith("int") else "REAL"
    return base if nullable else f"{base} NOT NULL"


SCHEMA = f"""
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL UNIQUE,
    method TEXT NOT NULL,
    strength REAL NOT NULL,
    lr REAL NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ({", ".join(f"'{s}'" for s in STATUSES)})),
    epochs_done INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    message TEXT,
    started_at TEXT,
    updated_at TEXT,
    wall_s REAL NOT NULL DEFAULT 0
);
CREATE TABLE epochs (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
{"".join(f"    {c} {_epoch_column_type(c)},{chr(10)}" for c in EPOCH_COLUMNS)}    PRIMARY KEY (run_id, epoch)
) WITHOUT ROWID;
CREATE TABLE layers (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    epoch INTEGER NOT NULL,
    name TEXT NOT NULL,
    numel INTEGER NOT NULL,
    norm REAL NOT NULL,
    zero_frac REAL NOT NULL,
    small_frac REAL NOT NULL,
    PRIMARY KEY (run_id, epoch, name)
) WITHOUT ROWID;
CREATE TABLE checkpoints (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id),
    epoch INTEGER NOT NULL,
    state BLOB NOT NULL
);
CREATE VIEW results AS
SELECT r.run_id, r.position, r.method, r.strength, r.lr, r.seed, r.status, r.epochs_done, r.message, r.wall_s,
       {", ".join(f"e.{c}" for c in EPOCH_COLUMNS if c not in ("epoch", "lr", "wall_s"))}
FROM runs r LEFT JOIN epochs e ON e.run_id = r.run_id AND e.epoch = r.epochs_done;
"""


class StoreError(RuntimeError):
    """The store cannot be used as asked; the message says why and what to do. Nothing was written."""


@dataclass(frozen=True)
class RunRow:
    """One row of ``runs``."""

    run_id: str
    position: int
    method: str
    strength: float
    lr: float
    seed: int
    config: str
    status: str
    epochs_done: int
    attempts: int
    message: str | None
    started_at: str | None
    updated_at: str | None
    wall_s: float

    def run_config(self) -> RunConfig:
        return RunConfig.from_dict(json.loads(self.config))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _check_file(path: Path) -> None:
    """Refuse anything that is not (empty or) a SQLite file, before SQLite touches it."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a results database")
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
        if header != SQLITE_HEADER:
            raise StoreError(
                f"{path} exists but is not a SQLite database (corrupt or foreign file); "
                "decaylab will not overwrite it: move it away or choose another --out"
            )


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Human-readable differences between two JSON-like values."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in sorted(set(old) | set(new)):
            name = f"{prefix}.{key}" if prefix else key
            out += _diff(old.get(key), new.get(key), name)
        return out
    return [] if old == new else [f"{prefix}: stored {old!r}, asked {new!r}"]


class Store:
    """A study's SQLite results. Open with :meth:`for_study` (to run it) or :meth:`read` (to report)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.db = connection

    # --- opening ---------------------------------------------------------------------------------

    @staticmethod
    def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
        uri = f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rw'}"
        db = sqlite3.connect(uri, uri=True, isolation_level=None)  # autocommit; explicit transactions
        db.row_factory = sqlite3.Row
        return db

    @classmethod
    def _verify(cls, path: Path, db: sqlite3.Connection) -> None:
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            check = db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise StoreError(
                f"{path} is not a readable SQLite database ({error}); decaylab will not touch it"
            ) from None
        if app_id != APPLICATION_ID:
            raise StoreError(
                f"{path} is a SQLite database but not a decaylab results store (application_id {app_id:#x}); "
                "decaylab will not touch it: choose another --out"
            )
        if check != "ok":
            raise StoreError(f"{path} is corrupt (SQLite quick_check: {check}); decaylab will not touch it")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} was written with store schema {version}, newer than this decaylab's {SCHEMA_VERSION}; "
                "upgrade decaylab to use it"
            )

    @classmethod
    def read(cls, path: Path) -> Store:
        """Open an existing store to read it (reports, exports); nothing is written.

        The connection is read-write when the file allows it, so that SQLite can roll back the
        journal a killed writer left behind; a read-only file is opened read-only.
        """
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        if not path.exists():
            raise StoreError(f"{path}: no results database here; run `decaylab compare --out DIR` first")
        _check_file(path)
        try:
            db = cls._connect(path, readonly=False)
        except sqlite3.OperationalError:
            db = cls._connect(path, readonly=True)
        cls._verify(path, db)
        return cls(path, db)

    @classmethod
    def for_study(cls, path: Path, study: Mapping[str, Any], fingerprint: str) -> Store:
        """Open (or create) the store at ``path`` for the study ``study`` (its ``to_dict()``).

        Raises StoreError if the file holds anything else, including a different study.
        """
        path = Path(path)
        _check_file(path)
        fresh = not path.exists() or path.stat().st_size == 0
        if fresh:
            path.touch()
        db = cls._connect(path, readonly=False)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 10000")
        if fresh:
            # Write-ahead log, synced at checkpoints: a commit survives the process being killed at any
            # moment (only an OS crash or power cut could lose the last few epochs, never corrupt the file).
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("BEGIN IMMEDIATE")
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("study", json.dumps(study, sort_keys=True)),
                    ("fingerprint", fingerprint),
                    ("created_at", _now()),
                    ("schema_version", str(SCHEMA_VERSION)),
                ],
            )
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        store = cls(path, db)
        cls._verify(path, db)
        db.execute("PRAGMA synchronous = NORMAL")
        stored = store.meta().get("fingerprint")
        if stored != fingerprint:
            stored_study = json.loads(store.meta().get("study", "{}"))
            changes = "; ".join(_diff(stored_study, json.loads(json.dumps(study)))) or "unknown differences"
            store.close()
            raise StoreError(
                f"{path.parent} holds a different study (fingerprint {stored}, asked {fingerprint}): {changes}. "
                f"Use another --out for the new study, or re-run the stored one with --config {path.parent / 'study.toml'}"
            )
        return store

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ---------------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return {row["key"]: row["value"] for row in self.db.execute("SELECT key, value FROM meta")}

    def study(self) -> dict[str, Any]:
        return json.loads(self.meta()["study"])

    def runs(self) -> list[RunRow]:
        rows = self.db.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY position")
        return [RunRow(**dict(row)) for row in rows]

    def checkpoint(self, run_id: str) -> tuple[int, bytes] | None:
        row = self.db.execute("SELECT epoch, state FROM checkpoints WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else (row["epoch"], bytes(row["state"]))

    def epochs(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Rows of ``epochs`` (all runs, or one), ordered by run position and epoch."""
        query = (
            f"SELECT {', '.join('e.' + c for c in ('run_id', *EPOCH_COLUMNS))} FROM epochs e "
            "JOIN runs r ON r.run_id = e.run_id"
        )
        args: tuple[Any, ...] = ()
        if run_id is not None:
            query += " WHERE e.run_id = ?"
            args = (run_id,)
        return [dict(row) for row in self.db.execute(query + " ORDER BY r.position, e.epoch", args)]

    def layers(self) -> list[dict[str, Any]]:
        query = (
            "SELECT l.run_id, l.epoch, l.name, l.numel, l.norm, l.zero_frac, l.small_frac FROM layers l "
            "JOIN runs r ON r.run_id = l.run_id ORDER BY r.position, l.epoch, l.name"
        )
        return [dict(row) for row in self.db.execute(query)]

    def results(self) -> list[dict[str, Any]]:
        """The ``results`` view: every run with its last recorded epoch's metrics."""
        return [dict(row) for row in self.db.execute("SELECT * FROM results ORDER BY position")]

    # --- writing (each method is one transaction) --------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def add_runs(self, configs: Sequence[RunConfig]) -> None:
        """Register the study's runs (existing ones are kept as they are)."""
        with self._transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO runs (run_id, position, method, strength, lr, seed, config) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(c.run_id, i, c.method, c.strength, c.lr, c.seed, c.canonical_json()) for i, c in enumerate(configs)],
            )

    def start_attempt(self, run_id: str) -> tuple[int, bytes] | None:
        """Mark ``run_id`` as being run again and return the checkpoint to resume from, if any.

        A run with recorded epochs but no checkpoint restarts from scratch: its partial epochs are
        deleted in the same transaction.
        """
        with self._transaction():
            checkpoint = self.checkpoint(run_id)
            if checkpoint is None:
                self.db.execute("DELETE FROM layers WHERE run_id = ?", (run_id,))
                self.db.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
                self.db.execute("UPDATE runs SET epochs_done = 0, wall_s = 0 WHERE run_id = ?", (run_id,))
            self.db.execute(
                "UPDATE runs SET attempts = attempts + 1, message = NULL, started_at = COALESCE(started_at, ?) "
                "WHERE run_id = ?",
                (_now(), run_id),
            )
        return checkpoint

    def record_epoch(self, run_id: str, record: EpochRecord, checkpoint: bytes | None, *, last: bool) -> bool:
        """Store one finished epoch (and, when ``last``, finish the run) in one transaction.

        An epoch already recorded is ignored (runs are deterministic, so a retried shard sends the
        same numbers): returns False then, True when something was written.
        """
        with self._transaction():
            row = self.db.execute("SELECT epochs_done, status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"run {run_id} is not part of this study")
            if row["status"] in ("finished", "diverged") or record.epoch <= row["epochs_done"]:
                return False
            if record.epoch != row["epochs_done"] + 1:
                raise StoreError(f"run {run_id}: epoch {record.epoch} arrived after epoch {row['epochs_done']}")
            metrics = record.metrics()
            self.db.execute(
                f"INSERT INTO epochs (run_id, {', '.join(EPOCH_COLUMNS)}) "
                f"VALUES (?, {', '.join('?' for _ in EPOCH_COLUMNS)})",
                (run_id, *(metrics[c] for c in EPOCH_COLUMNS)),
            )
            self.db.executemany(
                f"INSERT INTO layers (run_id, epoch, {', '.join(LAYER_COLUMNS)}) "
                f"VALUES (?, ?, {', '.join('?' for _ in LAYER_COLUMNS)})",
                [(run_id, record.epoch, *(getattr(s, c) for c in LAYER_COLUMNS)) for s in record.layers],
            )
            if last or checkpoint is None:
                self.db.execute("DELETE FROM checkpoints WHERE run_id = ?", (run_id,))
            else:
                self.db.execute(
                    "INSERT OR REPLACE INTO checkpoints (run_id, epoch, state) VALUES (?, ?, ?)",
                    (run_id, record.epoch, checkpoint),
                )
            self.db.execute(
                "UPDATE runs SET epochs_done = ?, status = ?, updated_at = ?, wall_s = wall_s + ? WHERE run_id = ?",
                (record.epoch, "finished" if last else "running", _now(), record.wall_s, run_id),
            )
        return True

    def record_end(self, run_id: str, status: str, message: str) -> None:
        """Mark a run ``diverged`` (final: re-running would diverge again) or ``failed`` (retried on re-run)."""
        if status not in ("diverged", "failed"):
            raise ValueError(f"status: expected 'diverged' or 'failed', got {status!r}")
        with self._transaction():
            if status == "diverged":
                self.db.execute("DELETE FROM checkpoints WHERE run_id = ?", (run_id,))
            self.db.execute(
                "UPDATE runs SET status = ?, message = ?, updated_at = ? WHERE run_id = ?",
                (status, message, _now(), run_id),
            )

    # --- export ----------------------------------------------------------------------------------

    def export_csv(self, directory: Path) -> list[Path]:
        """Write ``runs.csv`` (one row per run with its final metrics: the ``results`` view),
        ``epochs.csv`` (one row per run and epoch, with method/strength/lr/seed) and ``layers.csv``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        keys = {r.run_id: (r.method, r.strength, r.lr, r.seed) for r in self.runs()}
        epochs = [
            dict(zip(("method", "strength", "lr_initial", "seed"), keys[e["run_id"]], strict=True)) | e
            for e in self.epochs()
        ]
        written = []
        for name, rows in (("runs.csv", self.results()), ("epochs.csv", epochs), ("layers.csv", self.layers())):
            written.append(_write_csv(directory / name, rows))
        return written


def _write_csv(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    rows = list(rows)
    with path.open("w", newline="") as handle:
        if rows:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception, including KeyboardInterrupt)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
