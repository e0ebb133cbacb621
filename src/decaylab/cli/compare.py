"""``decaylab compare``: methods x strengths x seeds (x lrs) on one task, stored, resumable, reported."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from decaylab.cli._app import app
from decaylab.cli.train import (
    BaseOpt,
    BatchOpt,
    ChannelsOpt,
    ConvLayersOpt,
    DataSeedOpt,
    DatasetOpt,
    EpochsOpt,
    FeaturesOpt,
    GammaOpt,
    HiddenOpt,
    InformativeOpt,
    ModelOpt,
    MomentumOpt,
    NoiseOpt,
    SamplesOpt,
    ScaleOpt,
    ScheduleOpt,
    StepEveryOpt,
    TestFractionOpt,
    TrainSizeOpt,
    choices,
    explain,
    fail,
    flag,
    parse_list,
    progress,
    task_options,
)
from decaylab.sandbox.methods import METHODS
from decaylab.sandbox.runner import EXECUTORS, Executor, ExecutorError, make_executor
from decaylab.sandbox.store import StoreError
from decaylab.sandbox.study import GRID_KEYS, RANK_BY, TASK_FIELDS, Study, default_study

RUNS_DIR = Path("runs")
EXECUTOR_FLAGS = {
    "executor": "--executor",
    "address": "--address",
    "stack": "--stack/--no-stack",
    "compile": "--compile",
}


def default_out(study: Study, quick: bool) -> Path:
    """``runs/<dataset>-<model>[-quick]-<fingerprint 8>``: a new study never lands in an old one's directory."""
    return RUNS_DIR / f"{study.label()}{'-quick' if quick else ''}-{study.fingerprint[:8]}"


def build_study(
    config: Path | None, quick: bool, task: dict[str, Any], grid: dict[str, Any], rank_by: str | None
) -> Study:
    """The default study or ``config``, with flags applied on top, then ``--quick``. Bad input exits 2."""
    # Without a config file every value comes from a default or a flag, so name the flag.
    named = (*task, *grid) if config is not None else (*TASK_FIELDS, *GRID_KEYS)
    flags = {name: flag(name) for name in named} | {"rank_by": "--rank-by"}
    source = str(config) if config is not None else None
    try:
        base = Study.from_toml(config) if config is not None else default_study()
    except ValueError as error:
        fail(explain(error, {}, source))
    if "strengths" in grid:  # --strengths applies to every method
        grid["strengths_by_method"] = {}
    try:
        study = base.override(task=task, grid=grid)
        if rank_by is not None:
            data = study.to_dict()
            data["report"]["rank_by"] = rank_by
            study = Study.from_dict(data)
        return study.quick() if quick else study
    except ValueError as error:
        fail(explain(error, flags, source))


@app.command("compare")
def compare_command(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="A study in TOML (tables task, grid, report; see docs); flags override it."),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="A seconds-long version of the same study (3 epochs, 2 seeds, 2 strengths).")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Study directory (default runs/<dataset>-<model>-<id>); re-running resumes."),
    ] = None,
    methods: Annotated[str | None, typer.Option("--methods", help=f"Comma-separated: {choices(METHODS)}.")] = None,
    strengths: Annotated[
        str | None, typer.Option("--strengths", help="Comma-separated strengths > 0, used for every method.")
    ] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", help="Comma-separated seeds, e.g. 0,1,2.")] = None,
    lrs: Annotated[
        str | None, typer.Option("--lrs", help="Comma-separated learning rates (two or more: lr x strength heatmaps).")
    ] = None,
    rank_by: Annotated[
        str | None, typer.Option("--rank-by", help=f"How the best strength is picked: {choices(RANK_BY)}.")
    ] = None,
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
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help=f"How runs are executed: {choices(EXECUTORS)} (local: one after another here; batched: each "
            "group of runs that differ only in method, strength, lr, seed or schedule as one stacked model, where "
            "a measurement shows that is faster; the choice is printed and kept in plans.jsonl; ray: shards as "
            "Ray tasks, stacked where that pays, see --address and docs/ray.md).",
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="With --executor ray: the running Ray cluster to use (HOST:PORT of its head, ray://HOST:PORT, "
            "or auto); default: start a local Ray instance for this run.",
        ),
    ] = None,
    stack: Annotated[
        bool | None,
        typer.Option(
            "--stack/--no-stack",
            help="With --executor ray: ship groups of compatible runs as shards that each worker trains as one "
            "stacked model where its own measurement says that pays (default), or one run per shard, trained "
            "exactly as the local executor does (bit-identical numbers).",
            show_default=False,
        ),
    ] = None,
    compile_stacked: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="With --executor batched (or ray, stacked): compile each stacked group's forward and backward with "
            "torch.compile (the first compile in a process takes seconds; then about 1.5-1.8x faster stacked steps "
            "for MLPs and linear models; needs a C++ compiler). Pays only for long studies.",
        ),
    ] = False,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Build the report when done.")] = True,
) -> None:
    """Compare regularization methods: every method x strength x seed (x lr) on one task.

    With no arguments: digits (300 training images), SimpleCNN, SGD momentum 0.9, cosine lr from 0.05,
    30 epochs; no decay, coupled L2, decoupled L2, L1, proximal L1 and an L2 penalty at four strengths
    each, 3 seeds (63 runs, about two minutes on 2 cores). Results go to a SQLite store in the study
    directory, one transaction per epoch: interrupt it at any time and run the same command again to
    resume. Ends with the summary table and the path of report.html.
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
    grid = {
        key: value
        for key, value in (
            ("methods", parse_list("--methods", methods, str)),
            ("strengths", parse_list("--strengths", strengths, float)),
            ("seeds", parse_list("--seeds", seeds, int)),
            ("lrs", parse_list("--lrs", lrs, float)),
        )
        if value is not None
    }
    study = build_study(config, quick, task, grid, rank_by)
    ray_options = {name: value for name, value in (("address", address), ("stack", stack)) if value is not None}
    if ray_options and executor != "ray":
        flag = "--address" if address is not None else ("--stack" if stack else "--no-stack")
        fail(f"{flag}: only used with --executor ray (got --executor {executor})")
    if compile_stacked and executor not in ("batched", "ray"):
        fail(f"--compile: only used with --executor batched or ray (got --executor {executor})")
    options = {**ray_options, **({"compile": True} if compile_stacked else {})}
    try:
        runner = make_executor(executor, **options)
    except ValueError as error:
        fail(explain(error, EXECUTOR_FLAGS))
    except ExecutorError as error:  # e.g. Ray not installed
        fail(explain(error, EXECUTOR_FLAGS), code=1)
    directory = out if out is not None else default_out(study, quick)
    outcome = _run(study, directory, runner)
    failed = outcome.counts.get("failed", 0)
    typer.echo(
        f"study {study.fingerprint} in {directory}: "
        + ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts.items()))
        + f" ({outcome.skipped} already done; {outcome.wall_s:.0f} s, executor {outcome.executor})"
    )
    if report:
        from decaylab.report import build_report, print_summary

        built = build_report(directory)
        print_summary(built.results)
        typer.echo(f"report: {built.html}")
    if failed:
        typer.secho(
            f"{failed} run(s) failed; run the same command again to retry them", fg=typer.colors.YELLOW, err=True
        )
        raise typer.Exit(1)


def _run(study: Study, directory: Path, executor: Executor) -> Any:
    from decaylab.sandbox.runner import EpochDone, run_study

    runs = len(study.configurations())
    typer.echo(f"study {study.fingerprint}: {runs} runs -> {directory}", err=True)
    with progress(runs) as bar:

        def on_start(total: int, skipped: int) -> None:
            bar.reset(total)
            bar.update(skipped)

        def on_event(event: Any, config: Any) -> None:
            label = f"{config.method} λ={config.strength:g} seed {config.seed}"
            if isinstance(event, EpochDone):
                bar.set_postfix_str(f"{label} epoch {event.record.epoch}/{config.epochs}")
                if event.last:
                    bar.update()
            else:
                bar.write(f"{label}: {event.status} ({event.message.splitlines()[0]})")
                bar.update()

        if hasattr(executor, "on_plan"):  # executors that choose a plan per group of runs say which, and why

            def on_plan(batch: Any) -> None:
                from decaylab.sandbox.batched.plan import record_plans

                bar.write(f"plan: {batch.message()}")
                record_plans(directory, [batch])  # as it is made: an interrupted study keeps its decisions

            executor.on_plan = on_plan
        try:
            return run_study(study, directory, executor=executor, on_event=on_event, on_start=on_start)
        except StoreError as error:
            fail(str(error), code=1)
        except ExecutorError as error:
            fail(explain(error, EXECUTOR_FLAGS), code=1)
        except KeyboardInterrupt:
            bar.close()
            typer.secho(
                f"interrupted; finished runs and epochs are kept in {directory}. Run the same command again to resume.",
                fg=typer.colors.YELLOW,
                err=True,
            )
            raise typer.Exit(130) from None
