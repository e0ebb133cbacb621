"""``decaylab train``: one run, epoch by epoch. Also the option helpers ``compare`` builds on."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from decaylab.cli._app import app
from decaylab.sandbox.datasets import DATASETS
from decaylab.sandbox.measures import LayerStats
from decaylab.sandbox.methods import METHODS
from decaylab.sandbox.store import LAYER_COLUMNS, StoreError
from decaylab.sandbox.train import FIELDS, METRICS, MODELS, SCHEDULES, EpochRecord, RunConfig

# --- helpers shared with `compare` ------------------------------------------------------------------


def flag(name: str) -> str:
    """The command-line flag of a config field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def explain(error: Exception, from_flags: Mapping[str, str], source: str | None = None) -> str:
    """Rewrite ``"field: ..."`` as ``"--flag: ..."`` when the value came from a flag, or as
    ``"FILE: field: ..."`` when it came from a config file."""
    message = str(error)
    field, sep, rest = message.partition(":")
    if sep and field in from_flags:
        return f"{from_flags[field]}:{rest}"
    return f"{source}: {message}" if source else message


def parse_list(option: str, text: str | None, kind: Callable[[str], Any]) -> list[Any] | None:
    """Split a comma-separated flag value; a bad item is an error naming ``option``."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        fail(f"{option}: expected a comma-separated list, got {text!r}")
    values = []
    for item in items:
        try:
            values.append(kind(item))
        except ValueError:
            fail(f"{option}: {item!r} is not a valid {'integer' if kind is int else 'number'}")
    return values


def given(**options: Any) -> dict[str, Any]:
    """The options the user actually passed (``None`` means not given)."""
    return {k: v for k, v in options.items() if v is not None}


def choices(names: Any) -> str:
    return ", ".join(names)


def console() -> Any:
    """A rich Console; 160 columns wide when stdout is not a terminal (logs, pipes), so tables stay whole."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=160)


@contextmanager
def progress(total: int, initial: int = 0, unit: str = "run") -> Iterator[Any]:
    """A tqdm bar on stderr (disabled when stderr is not a terminal)."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True, disable=None, file=sys.stderr)
    try:
        yield bar
    finally:
        bar.close()


# Options shared by `train` and `compare` (the task: data, model, optimization).
DatasetOpt = Annotated[str | None, typer.Option("--dataset", help=f"Data set: {choices(DATASETS)}.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help=f"Model: {choices(MODELS)} (cnn: digits only).")]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", help="Epochs per run.")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="Mini-batch size.")]
ScheduleOpt = Annotated[
    str | None, typer.Option("--schedule", help=f"LR schedule, stepped per epoch: {choices(SCHEDULES)}.")
]
StepEveryOpt = Annotated[int | None, typer.Option("--step-every", help="step schedule: epochs between lr drops.")]
GammaOpt = Annotated[float | None, typer.Option("--gamma", help="step schedule: lr factor at each drop.")]
BaseOpt = Annotated[str | None, typer.Option("--base", help="Base optimizer: sgd or adam.")]
MomentumOpt = Annotated[float | None, typer.Option("--momentum", help="SGD momentum in [0, 1).")]
ScaleOpt = Annotated[
    str | None,
    typer.Option("--scale", help="Decoupled decay scale: lr (s = lr), schedule (s = lr/lr0) or none (s = 1)."),
]
TrainSizeOpt = Annotated[
    int | None, typer.Option("--train-size", help="Keep only this many training examples (a data-poor regime).")
]
TestFractionOpt = Annotated[float | None, typer.Option("--test-fraction", help="Share of the data held out for test.")]
DataSeedOpt = Annotated[int | None, typer.Option("--data-seed", help="Seed of the split and of generated data.")]
SamplesOpt = Annotated[int | None, typer.Option("--samples", help="Generated tasks: number of examples.")]
FeaturesOpt = Annotated[int | None, typer.Option("--features", help="sparse_regression: input features d.")]
InformativeOpt = Annotated[
    int | None, typer.Option("--informative", help="sparse_regression: features k with a non-zero true weight.")
]
NoiseOpt = Annotated[float | None, typer.Option("--noise", help="Generated tasks: noise level.")]
HiddenOpt = Annotated[str | None, typer.Option("--hidden", help="MLP hidden widths, comma-separated (e.g. 64,64).")]
ChannelsOpt = Annotated[int | None, typer.Option("--channels", help="CNN channels per convolution.")]
ConvLayersOpt = Annotated[int | None, typer.Option("--conv-layers", help="CNN convolution layers.")]


def task_options(**options: Any) -> dict[str, Any]:
    """The task fields given on the command line (``hidden`` parsed from its comma list)."""
    task = given(**options)
    if "hidden" in task:
        task["hidden"] = parse_list("--hidden", task["hidden"], int)
    return task


# --- the command ------------------------------------------------------------------------------------


def epoch_table(records: list[EpochRecord], task: str) -> Any:
    from rich import box
    from rich.table import Table

    metric = METRICS[task]
    percent = task == "classification"
    table = Table(box=box.SIMPLE_HEAD)
    short = {"accuracy": "acc %", "r2": "R²"}[metric]
    headers = ["epoch", "lr", "train loss", "test loss", f"train {short}", f"test {short}", "‖w‖", "w=0 %"]
    headers += ["|w|<1e-3 %", "τ (epochs)"]
    sparse = any(r.recovered is not None for r in records)
    if sparse:
        headers += ["recovered", "spurious"]
    for i, name in enumerate(headers):
        table.add_column(name, justify="right" if i else "left")

    def m(value: float) -> str:
        return f"{100 * value:.1f}" if percent else f"{value:.3f}"

    for r in records:
        row = [str(r.epoch), f"{r.lr:.3g}", f"{r.train_loss:.4f}", f"{r.test_loss:.4f}", m(r.train_metric)]
        row += [m(r.test_metric), f"{r.weight_norm:.3f}", f"{100 * r.zero_frac:.1f}", f"{100 * r.small_frac:.1f}"]
        row.append("—" if r.timescale_epochs is None else f"{r.timescale_epochs:.3g}")
        if sparse:
            row += [str(r.recovered), str(r.spurious)]
        table.add_row(*row)
    return table


def layer_table(record: EpochRecord) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title=f"per layer after epoch {record.epoch}", box=box.SIMPLE_HEAD)
    for i, name in enumerate(("parameter", "entries", "‖w‖", "w=0 %", "|w|<1e-3 %")):
        table.add_column(name, justify="right" if i else "left")
    for layer in record.layers:
        table.add_row(
            layer.name,
            str(layer.numel),
            f"{layer.norm:.4f}",
            f"{100 * layer.zero_frac:.1f}",
            f"{100 * layer.small_frac:.1f}",
        )
    return table


@app.command("train")
def train_command(
    method: Annotated[str, typer.Option("--method", help=f"Regularization method: {choices(METHODS)}.")] = "none",
    strength: Annotated[float, typer.Option("--strength", help="Decay strength λ (> 0 unless --method none).")] = 0.0,
    lr: Annotated[float, typer.Option("--lr", help="Initial learning rate.")] = RunConfig.lr,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the initialization and the mini-batch order.")] = 0,
    dataset: DatasetOpt = None,
    model: ModelOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    schedule: ScheduleOpt = None,
    step_every: StepEveryOpt = None,
    gamma: GammaOpt = None,
    base: BaseOpt = None,
    momentum: MomentumOpt = None,
    scale: ScaleOpt = None,
    train_size: TrainSizeOpt = None,
    test_fraction: TestFractionOpt = None,
    data_seed: DataSeedOpt = None,
    samples: SamplesOpt = None,
    features: FeaturesOpt = None,
    informative: InformativeOpt = None,
    noise: NoiseOpt = None,
    hidden: HiddenOpt = None,
    channels: ChannelsOpt = None,
    conv_layers: ConvLayersOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Keep the run in a study directory (SQLite store + CSV); re-running resumes."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the per-epoch records as JSON lines.")] = False,
) -> None:
    """Train one model with one regularization method and print what every epoch measured.

    Per epoch: train/test loss and accuracy (R² for regression), weight norm, share of weights exactly
    0 and below 1e-3, the decay's EMA timescale 1/(c·steps per epoch) in epochs (— where undefined) and,
    on sparse_regression, how many true features the model found. Defaults: digits, SimpleCNN, SGD with
    momentum 0.9, lr 0.05, 10 epochs.
    """
    task = task_options(
        dataset=dataset,
        model=model,
        epochs=epochs,
        batch_size=batch_size,
        schedule=schedule,
        step_every=step_every,
        gamma=gamma,
        base=base,
        momentum=momentum,
        scale=scale,
        train_size=train_size,
        test_fraction=test_fraction,
        data_seed=data_seed,
        samples=samples,
        features=features,
        informative=informative,
        noise=noise,
        hidden=hidden,
        channels=channels,
        conv_layers=conv_layers,
    )
    flags = {name: flag(name) for name in FIELDS}
    if method != "none" and strength <= 0:
        fail(f"--strength: method {method!r} needs a strength > 0 (got {strength:g}); use --method none for no decay")
    try:
        config = RunConfig(method=method, strength=strength, lr=lr, seed=seed, **task)
    except ValueError as error:
        fail(explain(error, flags))
    records = _train_in_study(config, out) if out is not None else _train(config)
    _print_records(records, config, as_json)


def _train(config: RunConfig) -> list[EpochRecord]:
    from decaylab.sandbox.train import DivergedError, threads, train

    records = []
    with progress(config.epochs, unit="epoch") as bar, threads(1):
        try:
            for record, _ in train(config):
                records.append(record)
                bar.set_postfix(test_loss=f"{record.test_loss:.4f}", test_metric=f"{record.test_metric:.4f}")
                bar.update()
        except DivergedError as error:
            bar.close()
            _print_records(records, config, False)
            fail(f"the run diverged: {error}", code=1)
    return records


def _train_in_study(config: RunConfig, out: Path) -> list[EpochRecord]:
    from decaylab.sandbox.runner import EpochDone, RunEnded, run_study
    from decaylab.sandbox.store import Store
    from decaylab.sandbox.study import Study

    data = config.to_dict()
    task = {k: v for k, v in data.items() if k not in ("method", "strength", "lr", "seed") and v is not None}
    study = Study.from_dict(
        {
            "task": task,
            "grid": {
                "methods": [config.method],
                "strengths": [config.strength or 1.0],  # unused by "none", which always runs at 0
                "seeds": [config.seed],
                "lrs": [config.lr],
            },
        }
    )
    ended: list[RunEnded] = []
    with progress(config.epochs, unit="epoch") as bar:

        def on_event(event: Any, _: RunConfig) -> None:
            if isinstance(event, EpochDone):
                bar.update()
            else:
                ended.append(event)

        def on_start(total: int, skipped: int) -> None:
            if skipped:
                bar.update(config.epochs)

        try:
            run_study(study, out, on_event=on_event, on_start=on_start)
        except StoreError as error:
            fail(str(error), code=1)
    with Store.read(out) as store:
        layers: dict[int, list[LayerStats]] = {}
        for row in store.layers():
            layers.setdefault(row["epoch"], []).append(LayerStats(**{k: row[k] for k in LAYER_COLUMNS}))
        records = [_record(row, tuple(layers.get(row["epoch"], ()))) for row in store.epochs()]
        store.export_csv(out)
    typer.echo(f"stored in {out} (epochs.csv, runs.csv); `decaylab report {out}` draws the report", err=True)
    if ended:
        _print_records(records, config, False)
        fail(f"the run {ended[0].status}: {ended[0].message.splitlines()[0]}", code=1)
    return records


def _record(row: dict[str, Any], layers: tuple[LayerStats, ...]) -> EpochRecord:
    fields = {k: v for k, v in row.items() if k != "run_id"}
    return EpochRecord(**fields, layers=layers)


def _print_records(records: list[EpochRecord], config: RunConfig, as_json: bool) -> None:
    if as_json:
        for record in records:
            layers = [dataclasses.asdict(layer) for layer in record.layers]
            typer.echo(json.dumps(record.metrics() | {"layers": layers}))
        return
    task = "regression" if config.dataset == "sparse_regression" else "classification"
    screen = console()
    screen.print(
        f"{config.dataset} / {config.model} / {config.method} λ={config.strength:g} / lr {config.lr:g} "
        f"({config.schedule}) / seed {config.seed}; τ = the decay's EMA timescale in epochs (— undefined)"
    )
    screen.print(epoch_table(records, task))
    if records and records[-1].layers:
        screen.print(layer_table(records[-1]))
