"""Turn command-line targets into optimizers to audit.

A target is one of

* a class path: ``torch.optim.AdamW``, optionally with fixed keyword arguments written as a call:
  ``torch.optim.RAdam(decoupled_weight_decay=True)`` (values are Python literals);
* a module: ``torch_optimizer``, ``pytorch_optimizer``, ``decaylab``: every public
  ``torch.optim.Optimizer`` subclass it exports (abstract classes and ``Optimizer`` itself excluded);
* ``--installed`` (:data:`INSTALLED_MODULES`): all of those modules that can be imported.

Every target is checked before anything runs; a bad one raises :class:`TargetError` naming it and
the kinds of target allowed.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import torch

from decaylab.audit.builder import Target
from decaylab.audit.recipes import recipe_for

INSTALLED_MODULES: tuple[str, ...] = ("torch.optim", "torch_optimizer", "pytorch_optimizer", "decaylab")

ALLOWED = (
    "expected a class path (e.g. torch.optim.AdamW, or torch.optim.RAdam(decoupled_weight_decay=True)), "
    "a module whose Optimizer subclasses are all audited (e.g. torch_optimizer, pytorch_optimizer, decaylab), "
    "or --installed"
)


class TargetError(ValueError):
    """A target that names nothing auditable; the message says which and what is allowed."""


def _is_optimizer_class(obj: Any) -> bool:
    return (
        inspect.isclass(obj)
        and issubclass(obj, torch.optim.Optimizer)
        and obj is not torch.optim.Optimizer
        and not inspect.isabstract(obj)
    )


def discover(module: ModuleType) -> list[Target]:
    """Every public Optimizer subclass ``module`` exports (its ``__all__``, else its public names)."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    found: dict[type, Target] = {}
    for attr in sorted(names, key=str.lower):
        obj = getattr(module, attr, None)
        if _is_optimizer_class(obj) and obj not in found:
            found[obj] = Target(name=f"{module.__name__}.{attr}", cls=obj, recipe=recipe_for(obj))
    return list(found.values())


def _split_call(text: str) -> tuple[str, dict[str, Any]]:
    """``"a.B(x=1)"`` -> ``("a.B", {"x": 1})``."""
    if "(" not in text:
        return text, {}
    if not text.endswith(")"):
        raise TargetError(f"target {text!r}: unbalanced parentheses; {ALLOWED}")
    path = text[: text.index("(")].strip()
    try:
        call = ast.parse(f"f{text[len(path) :]}", mode="eval").body
        if not isinstance(call, ast.Call) or call.args:
            raise ValueError("positional arguments")
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg is not None}
        if len(kwargs) != len(call.keywords):
            raise ValueError("**kwargs")
    except (SyntaxError, ValueError) as error:
        raise TargetError(f"target {text!r}: arguments must be keyword=literal pairs ({error}); {ALLOWED}") from None
    return path, kwargs


def _import(path: str, text: str) -> ModuleType | None:
    """Import ``path`` as a module; None when no such module exists (other import errors raise)."""
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as error:
        if error.name and (path == error.name or path.startswith(error.name + ".")):
            return None
        raise TargetError(f"target {text!r}: importing {path} failed: {error}") from None
    except Exception as error:  # a third-party package that fails on import
        raise TargetError(f"target {text!r}: importing {path} failed: {type(error).__name__}: {error}") from None


def parse_target(text: str) -> list[Target]:
    """The optimizers one target names (see the module docstring)."""
    text = text.strip()
    if not text:
        raise TargetError(f"target '': empty; {ALLOWED}")
    path, kwargs = _split_call(text)
    module = None if kwargs else _import(path, text)
    if module is not None:
        found = discover(module)
        if not found:
            raise TargetError(f"target {text!r}: module {path} contains no torch.optim.Optimizer subclasses; {ALLOWED}")
        return found
    parent, _, attr = path.rpartition(".")
    owner = _import(parent, text) if parent else None
    if owner is None:
        raise TargetError(f"target {text!r}: no module or class of that name can be imported; {ALLOWED}")
    if not hasattr(owner, attr):
        raise TargetError(f"target {text!r}: module {parent} has no attribute {attr!r}; {ALLOWED}")
    obj = getattr(owner, attr)
    if not _is_optimizer_class(obj):
        raise TargetError(f"target {text!r}: {path} is a {type(obj).__name__}, not an Optimizer subclass; {ALLOWED}")
    return [Target(name=text if kwargs else path, cls=obj, kwargs=kwargs, recipe=recipe_for(obj))]


def installed_targets() -> tuple[list[Target], list[str]]:
    """Targets of every importable module of :data:`INSTALLED_MODULES`, and a note per missing one."""
    targets: list[Target] = []
    missing = []
    for name in INSTALLED_MODULES:
        try:
            module = importlib.import_module(name)
        except Exception as error:  # not installed, or broken: say so and go on
            missing.append(f"{name}: not importable ({type(error).__name__}: {error})")
            continue
        targets.extend(discover(module))
    return targets, missing


def resolve_targets(texts: Iterable[str], installed: bool = False) -> tuple[list[Target], list[str]]:
    """All targets, checked up front; the same class with the same kwargs is audited once.

    Returns the targets and notes (modules ``--installed`` could not import). Raises
    :class:`TargetError` for the first bad target, and when nothing at all is named.
    """
    targets: list[Target] = []
    notes: list[str] = []
    texts = list(texts)
    for text in texts:
        targets.extend(parse_target(text))
    if installed:
        found, notes = installed_targets()
        targets.extend(found)
    if not texts and not installed:
        raise TargetError(f"no target given; {ALLOWED}")
    unique: dict[tuple[type, str], Target] = {}
    for target in targets:
        key = (target.cls, repr(sorted(target.kwargs.items())))
        unique.setdefault(key, target)
    return list(unique.values()), notes
