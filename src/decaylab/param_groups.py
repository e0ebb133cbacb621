"""Which parameters get decay: a pure decision, separate from how any optimizer decays them.

By default biases, normalization layers and embeddings get no decay (the usual practice in
timm, Hugging Face and nanoGPT). Glob patterns over parameter names override the default.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

from torch import nn

NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)
EMBEDDINGS: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def split_decay(
    model: nn.Module,
    *,
    decay: Sequence[str] = (),
    no_decay: Sequence[str] = (),
    exclude_bias: bool = True,
    exclude_norm: bool = True,
    exclude_embedding: bool = True,
) -> tuple[list[str], list[str]]:
    """Return ``(decay_names, no_decay_names)`` for the trainable parameters of ``model``.

    A parameter gets no decay when it is a bias (its name ends in ``bias``), belongs to a
    normalization layer or an embedding (each switchable), or matches a ``no_decay`` glob
    pattern; a ``decay`` pattern forces decay. A name matching both kinds of pattern is an error.
    """
    for arg, patterns in (("decay", decay), ("no_decay", no_decay)):
        if isinstance(patterns, str):
            raise TypeError(
                f"{arg}: expected a sequence of glob patterns, got the string {patterns!r}; wrap it in a list"
            )
    excluded_modules = (NORM_LAYERS if exclude_norm else ()) + (EMBEDDINGS if exclude_embedding else ())
    owner: dict[str, nn.Module] = {}
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            owner[f"{module_name}.{param_name}" if module_name else param_name] = module
    decay_names: list[str] = []
    no_decay_names: list[str] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        forced_on, forced_off = _matches(name, decay), _matches(name, no_decay)
        if forced_on and forced_off:
            raise ValueError(f"parameter {name!r} matches both a decay and a no_decay pattern; make them disjoint")
        default_off = (exclude_bias and name.rsplit(".", 1)[-1] == "bias") or isinstance(
            owner.get(name), excluded_modules
        )
        (no_decay_names if (forced_off or (default_off and not forced_on)) else decay_names).append(name)
    return decay_names, no_decay_names


def param_groups(
    model: nn.Module,
    weight_decay: float,
    *,
    key: str = "weight_decay",
    **split_options: Any,
) -> list[dict[str, Any]]:
    """Param groups for any optimizer: ``[{params: decayed, key: weight_decay}, {params: rest, key: 0.0}]``.

    ``key`` is the group option that holds the strength: ``"weight_decay"`` for torch.optim and
    decaylab's optimizers, ``"decay_weight_decay"`` for :class:`~decaylab.optim.DecayWrapper`.
    Empty groups are left out. ``split_options`` go to :func:`split_decay`.
    """
    decay_names, no_decay_names = split_decay(model, **split_options)
    by_name = dict(model.named_parameters())
    groups = [
        {"params": [by_name[n] for n in decay_names], key: weight_decay},
        {"params": [by_name[n] for n in no_decay_names], key: 0.0},
    ]
    return [g for g in groups if g["params"]]
