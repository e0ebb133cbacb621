"""One training run: a model on a task with one regularization method, recorded epoch by epoch.

A run is fully described by a :class:`RunConfig`. :class:`Run` holds its live state (data, model,
optimizer, LR scheduler and the generator that orders the mini-batches) and trains one epoch at a
time; :meth:`Run.state_bytes` / :meth:`Run.load_state_bytes` checkpoint all of it, so a run resumed
from the checkpoint of epoch ``e`` continues exactly as if it had never stopped.

Determinism: the model is initialized from ``torch.manual_seed(seed)`` (inside ``fork_rng``, so
the caller's global RNG is left alone) and the mini-batch order comes from a separate
``torch.Generator`` seeded with ``seed``; the split comes from ``data_seed``. The same config on the
same machine and thread count gives bit-identical numbers (the study runner pins one thread).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.metrics import r2_score
from torch import Tensor, nn

from decaylab.models import MLP, LinearModel, SimpleCNN
from decaylab.rules import SCALES
from decaylab.sandbox.datasets import DATASETS, Data, DataSpec, check_choice, check_int, check_real, check_spec, load
from decaylab.sandbox.measures import LayerStats, feature_recovery, layer_stats, totals
from decaylab.sandbox.methods import BASES, METHODS, Method, Regularized, build_method

MODELS: dict[str, str] = {
    "cnn": "decaylab.models.SimpleCNN: conv_layers 3x3 convolutions of `channels` channels + a linear layer (images only)",
    "mlp": "decaylab.models.MLP: `hidden` ReLU layers + a linear output layer",
    "linear": "decaylab.models.LinearModel: logistic regression on classes, least squares on regression",
}
SCHEDULES: dict[str, str] = {
    "constant": "the lr stays at `lr`",
    "cosine": "torch.optim.lr_scheduler.CosineAnnealingLR(T_max=epochs): lr -> 0 by the last epoch",
    "step": "torch.optim.lr_scheduler.StepLR(step_size=step_every, gamma): lr *= gamma every step_every epochs",
}
METRICS: dict[str, str] = {"classification": "accuracy", "regression": "r2"}


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run. Invalid values raise ValueError naming the field.

    Data: ``dataset`` and its split/generation knobs (see :class:`~decaylab.sandbox.datasets.DataSpec`).
    Model: ``model`` (``cnn``/``mlp``/``linear``), ``hidden`` (MLP widths), ``conv_layers`` and
    ``channels`` (CNN). Method: ``method`` (a name in ``METHODS``) at ``strength`` on the ``base``
    optimizer (``sgd`` with ``momentum``, or ``adam``; momentum is ignored for adam), decoupled methods
    scaled by ``scale``. Schedule: ``lr``, ``schedule`` (constant/cosine/step, stepped once per
    epoch), ``step_every`` (default ``max(1, epochs // 3)``) and ``gamma`` for ``step``.
    """

    dataset: str = "digits"
    test_fraction: float = 0.25
    data_seed: int = 0
    train_size: int | None = None
    samples: int | None = None
    features: int | None = None
    informative: int | None = None
    noise: float | None = None
    model: str = "cnn"
    hidden: tuple[int, ...] = (64,)
    conv_layers: int = 2
    channels: int = 16
    method: str = "none"
    strength: float = 0.0
    base: str = "sgd"
    momentum: float = 0.9
    scale: str = "lr"
    lr: float = 0.05
    schedule: str = "constant"
    step_every: int | None = None
    gamma: float = 0.1
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        check_choice("dataset", self.dataset, DATASETS, "dataset")
        check_choice("model", self.model, MODELS, "model")
        check_choice("method", self.method, METHODS, "method")
        check_choice("base", self.base, BASES, "base optimizer")
        check_choice("scale", self.scale, SCALES, "scale convention")
        check_choice("schedule", self.schedule, SCHEDULES, "lr schedule")
        hidden = self.hidden
        if isinstance(hidden, int | str) or not all(isinstance(h, int) and not isinstance(h, bool) for h in hidden):
            raise ValueError(f"hidden: expected a list of layer widths (integers >= 1), got {hidden!r}")
        set_(self, "hidden", tuple(hidden))
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden: expected layer widths >= 1, got {list(hidden)!r}")
        for name, minimum in (("conv_layers", 1), ("channels", 1), ("epochs", 1), ("batch_size", 1), ("seed", 0)):
            check_int(name, getattr(self, name), minimum)
        if self.step_every is not None:
            check_int("step_every", self.step_every, 1)
        set_(self, "lr", check_real("lr", self.lr, strict=True))
        set_(self, "strength", check_real("strength", self.strength))
        set_(self, "momentum", check_real("momentum", self.momentum, below=1.0))
        set_(self, "gamma", check_real("gamma", self.gamma, strict=True))
        check_spec(self.data_spec())
        set_(self, "test_fraction", float(self.test_fraction))
        if self.noise is not None:
            set_(self, "noise", float(self.noise))
        if self.model == "cnn" and self.dataset != "digits":
            raise ValueError(
                f"model: 'cnn' needs image inputs (dataset 'digits'); use 'mlp' or 'linear' for {self.dataset!r}"
            )

    def data_spec(self) -> DataSpec:
        return DataSpec(
            name=self.dataset,
            test_fraction=self.test_fraction,
            data_seed=self.data_seed,
            train_size=self.train_size,
            samples=self.samples,
            features=self.features,
            informative=self.informative,
            noise=self.noise,
        )

    @property
    def method_spec(self) -> Method:
        return METHODS[self.method]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown run option; valid options: {', '.join(FIELDS)}")
        return cls(**data)

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        """A stable id: the first 16 hex digits of the SHA-256 of the canonical JSON config."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunConfig))


# --- what a run records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochRecord:
    """What one finished epoch measured. ``*_metric`` is accuracy (classification) or R^2 (regression),
    measured on the whole split after the epoch; ``batch_loss`` is the mean mini-batch data loss seen
    while training. Weight statistics cover every parameter (every method here decays all of them).
    ``timescale_epochs`` is :func:`decay_timescale` (``None`` where undefined); ``recovered`` and
    ``spurious`` are :func:`feature_recovery` for the sparse task (``None`` elsewhere)."""

    epoch: int
    lr: float
    batch_loss: float
    penalty: float
    train_loss: float
    train_metric: float
    test_loss: float
    test_metric: float
    weight_norm: float
    zero_frac: float
    small_frac: float
    timescale_epochs: float | None
    recovered: int | None
    spurious: int | None
    wall_s: float
    layers: tuple[LayerStats, ...] = field(default=())

    def metrics(self) -> dict[str, Any]:
        """The scalar fields (everything but ``layers``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "layers"}


class DivergedError(RuntimeError):
    """A loss or weight became NaN/inf at ``epoch`` (1-based); the run cannot continue."""

    def __init__(self, epoch: int, reason: str) -> None:
        super().__init__(f"diverged in epoch {epoch}: {reason}")
        self.epoch = epoch
        self.reason = reason


def decay_timescale(config: RunConfig, *, lr: float, steps_per_epoch: int) -> float | None:
    r"""The decay's EMA timescale in epochs, ``1 / (c * steps_per_epoch)``, or ``None`` where undefined.

    An L2-type decay contracts the weights by a factor ``1 - c`` per step, so with no gradient they
    forget their past like an exponential moving average with timescale ``1/c`` steps
    (Wang & Aitchison's ``1/(lr*lam)``). ``c`` depends on how the method applies ``lam``:

    - decoupled (``decoupled_l2``, ``toward_reference`` toward ``w_ref``, ``elastic_net``'s L2 part):
      ``c = s * lam`` with the scale convention's ``s``: ``lr`` -> ``s = lr_t`` (so ``1/(lr*lam)``),
      ``schedule`` -> ``s = lr_t / lr_0`` (``lr_0`` = ``config.lr``), ``none`` -> ``s = 1`` (``1/lam`` steps, lr-independent).
      The base optimizer (SGD or Adam) does not enter: the decay acts outside the gradient.
    - coupled L2 on SGD: ``c = lr * lam / (1 - momentum)`` (the ``lam*w`` term is accumulated by
      momentum; steady state for slowly varying ``w``). ``penalty_l2`` is the same with ``2*lam``.
    - undefined (``None``): no decay (``none`` or strength 0); L1-type methods (``l1``,
      ``proximal_l1``, ``penalty_l1``), which shrink by a constant amount, not a fraction; coupled and
      penalty methods on Adam, whose decay is divided by the adaptive second-moment estimate.
    """
    method, lam = config.method_spec, config.strength
    if lam == 0 or method.kind == "none":
        return None
    if method.kind == "decoupled" and method.rule in ("l2", "toward_reference", "elastic_net"):
        s = {"lr": lr, "none": 1.0, "schedule": lr / config.lr}[config.scale]
        per_step = s * lam
    elif config.base == "sgd" and (method.kind == "coupled" or (method.kind == "penalty" and method.p == 2)):
        factor = 2.0 if method.kind == "penalty" else 1.0
        per_step = factor * lr * lam / (1.0 - config.momentum)
    else:
        return None
    return None if per_step <= 0 else 1.0 / (per_step * steps_per_epoch)


# --- building and running ---------------------------------------------------------------------------


def data_loss(task: str, output: Tensor, target: Tensor) -> Tensor:
    """The training loss: mean cross-entropy (classification) or mean squared error (regression)."""
    if task == "classification":
        return nn.functional.cross_entropy(output, target)
    return nn.functional.mse_loss(output.squeeze(-1), target)


def score(task: str, output: Tensor, target: Tensor) -> tuple[float, float]:
    """``(mean data loss, accuracy or R^2)`` of a model's ``output`` on a whole split."""
    with torch.no_grad():
        loss = float(data_loss(task, output, target))
        if task == "classification":
            return loss, float((output.argmax(dim=1) == target).double().mean())
        prediction = output.squeeze(-1)
        finite = bool(torch.isfinite(prediction).all())
        with np.errstate(over="ignore", invalid="ignore"):  # huge but finite predictions of a diverging run
            metric = float(r2_score(target.numpy(), prediction.numpy())) if finite else math.nan
    return loss, metric


def check_loss(value: float, *, epoch: int, step: int, steps_per_epoch: int) -> None:
    """Raise :class:`DivergedError` if a mini-batch loss is NaN/inf (``step`` of ``steps_per_epoch``)."""
    if not math.isfinite(value):
        raise DivergedError(epoch, f"training loss is {value} at step {step} of {steps_per_epoch}")


def build_model(config: RunConfig, data: Data) -> nn.Module:
    if config.model == "cnn":
        channels, height, width = data.input_shape
        return SimpleCNN(
            (height, width),
            channels,
            data.out_features,
            num_layers=config.conv_layers,
            num_channels=config.channels,
            kernel_size=3,
        )
    if config.model == "mlp":
        return MLP(data.in_features, data.out_features, config.hidden)
    return LinearModel(data.in_features, data.out_features)


def build_scheduler(config: RunConfig, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    from torch.optim import lr_scheduler

    if config.schedule == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "step":
        step_every = config.step_every or max(1, config.epochs // 3)
        return lr_scheduler.StepLR(optimizer, step_size=step_every, gamma=config.gamma)
    return lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(count)``, restoring the previous count afterwards.

    Small CPU models train as fast on one thread, and a fixed count keeps results bit-identical
    (reductions may be split differently with more threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Run:
    """The live state of one run; :meth:`train_epoch` advances it by one epoch."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.data = load(config.data_spec())
        self.task = self.data.task
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = build_model(config, self.data)
        self.regularized: Regularized = build_method(
            config.method,
            self.model,
            lr=config.lr,
            strength=config.strength,
            base=config.base,
            momentum=config.momentum if config.base == "sgd" else 0.0,
            scale=config.scale,
        )
        self.scheduler = build_scheduler(config, self.regularized.optimizer)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.epoch = 0
        n = len(self.data.x_train)
        self.steps_per_epoch = math.ceil(n / config.batch_size)

    @property
    def finished(self) -> bool:
        return self.epoch >= self.config.epochs

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return data_loss(self.task, output, target)

    def evaluate(self, x: Tensor, y: Tensor) -> tuple[float, float]:
        """``(mean data loss, accuracy or R^2)`` on the whole of ``x``, ``y``."""
        self.model.eval()
        with torch.no_grad():
            output = self.model(x)
        self.model.train()
        return score(self.task, output, y)

    @property
    def lr(self) -> float:
        """The lr of the coming epoch (the scheduler steps once per epoch)."""
        return float(self.regularized.optimizer.param_groups[0]["lr"])

    def epoch_order(self) -> Tensor:
        """This epoch's order of the training examples (draws from the run's own generator)."""
        return torch.randperm(len(self.data.x_train), generator=self.generator)

    def train_step(self, x: Tensor, y: Tensor, *, epoch: int, step: int) -> float:
        """One optimizer step on the mini-batch ``x``, ``y``; returns its data loss.

        Raises :class:`DivergedError` (before stepping) when the loss is NaN/inf."""
        self.regularized.zero_grad()
        loss = self.loss(self.model(x), y)
        value = float(loss.detach())
        check_loss(value, epoch=epoch, step=step, steps_per_epoch=self.steps_per_epoch)
        loss.backward()
        self.regularized.step()
        return value

    def train_epoch(self) -> EpochRecord:
        """Train one epoch, then measure. Raises :class:`DivergedError` on a NaN/inf loss or weight."""
        start = time.perf_counter()
        epoch = self.epoch + 1
        lr = self.lr
        x, y = self.data.x_train, self.data.y_train
        order = self.epoch_order()
        total = 0.0
        self.model.train()
        for step, first in enumerate(range(0, len(x), self.config.batch_size), start=1):
            batch = order[first : first + self.config.batch_size]
            total += self.train_step(x[batch], y[batch], epoch=epoch, step=step) * len(batch)
        self.end_epoch()
        record = self.measure(epoch, lr=lr, batch_loss=total / len(x), wall_s=0.0)
        return dataclasses.replace(record, wall_s=time.perf_counter() - start)  # training and measuring

    def end_epoch(self) -> None:
        """After the last step of an epoch: step the lr scheduler and count the epoch as done."""
        self.scheduler.step()
        self.epoch += 1

    def measure(
        self,
        epoch: int,
        *,
        lr: float,
        batch_loss: float,
        wall_s: float,
        evaluation: tuple[tuple[float, float], tuple[float, float]] | None = None,
    ) -> EpochRecord:
        """The record of ``epoch`` from the model's current weights (``lr`` and ``batch_loss``: what the
        epoch trained with and saw). ``evaluation``: the model's ``(loss, metric)`` on the training and
        on the test split, when the caller already measured them (the batched executor does, for many
        models at once); otherwise :meth:`evaluate` measures them. Raises :class:`DivergedError` on a
        NaN/inf weight or evaluation."""
        layers = layer_stats(self.model)
        norm, zeros, small = totals(layers)
        if not math.isfinite(norm):
            raise DivergedError(epoch, "a weight became NaN or infinite")
        if evaluation is None:
            evaluation = (
                self.evaluate(self.data.x_train, self.data.y_train),
                self.evaluate(self.data.x_test, self.data.y_test),
            )
        (train_loss, train_metric), (test_loss, test_metric) = evaluation
        measured = (train_loss, test_loss, train_metric, test_metric)
        if not all(math.isfinite(v) for v in measured):
            raise DivergedError(
                epoch,
                f"evaluation is not finite (train/test loss {train_loss}/{test_loss}, metric {train_metric}/{test_metric})",
            )
        recovered = spurious = None
        if self.data.true_features is not None and hasattr(self.model, "first_layer"):
            recovered, spurious = feature_recovery(self.model, self.data.true_features)
        return EpochRecord(
            epoch=epoch,
            lr=lr,
            batch_loss=batch_loss,
            penalty=self.regularized.penalty_value(),
            train_loss=train_loss,
            train_metric=train_metric,
            test_loss=test_loss,
            test_metric=test_metric,
            weight_norm=norm,
            zero_frac=zeros,
            small_frac=small,
            timescale_epochs=decay_timescale(self.config, lr=lr, steps_per_epoch=self.steps_per_epoch),
            recovered=recovered,
            spurious=spurious,
            wall_s=wall_s,
            layers=layers,
        )

    def state_bytes(self) -> bytes:
        """A checkpoint of everything that determines the rest of the run."""
        buffer = io.BytesIO()
        torch.save(
            {
                "run_id": self.config.run_id,
                "epoch": self.epoch,
                "model": self.model.state_dict(),
                "optimizer": self.regularized.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "generator": self.generator.get_state(),
            },
            buffer,
        )
        return buffer.getvalue()

    def load_state_bytes(self, blob: bytes) -> None:
        """Restore a checkpoint written by :meth:`state_bytes` for this same config."""
        state = torch.load(io.BytesIO(blob), weights_only=True)
        if state["run_id"] != self.config.run_id:
            raise ValueError(f"checkpoint: belongs to run {state['run_id']}, not {self.config.run_id}")
        self.model.load_state_dict(state["model"])
        self.regularized.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])


def train(config: RunConfig, checkpoint: bytes | None = None) -> Iterator[tuple[EpochRecord, Run]]:
    """Train ``config`` (from ``checkpoint`` if given) and yield ``(record, run)`` after every epoch.

    ``run.state_bytes()`` at that moment is the checkpoint of the epoch just recorded. Raises
    :class:`DivergedError` when the run diverges.
    """
    run = Run(config)
    if checkpoint is not None:
        run.load_state_bytes(checkpoint)
    while not run.finished:
        yield run.train_epoch(), run
