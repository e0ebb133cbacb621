"""Scale conventions for decoupled decay.

Every decoupled rule moves a weight by ``s * lam * (something)``. Libraries disagree about ``s``
and rarely say which one they use; decaylab makes the choice an explicit argument:

====================  ===================  ==================================================
convention            s                    used by
====================  ===================  ==================================================
``"lr"``              lr_t                 torch.optim.AdamW, optax, Keras, pytorch_optimizer
``"schedule"``        lr_t / lr_0          Loshchilov & Hutter (eta_t), MosaicML decoupled optims
``"none"``            1                    the seed notebook's SGDW, tf-addons
====================  ===================  ==================================================

``lr_0`` is the group's ``initial_lr`` (the key torch LR schedulers use for the base lr).
With a constant learning rate ``"schedule"`` and ``"none"`` coincide.
"""

from __future__ import annotations

from typing import Final, Literal

Scale = Literal["lr", "schedule", "none"]
SCALES: Final[tuple[str, ...]] = ("lr", "schedule", "none")


def decay_scale(convention: str, lr: float, initial_lr: float) -> float:
    """Return ``s`` for one step: ``lr``, ``lr / initial_lr`` or ``1``.

    Raises ValueError for an unknown convention, or for ``"schedule"`` with a zero initial lr
    (the ratio is undefined).
    """
    if convention == "lr":
        return lr
    if convention == "none":
        return 1.0
    if convention == "schedule":
        if initial_lr == 0:
            raise ValueError(
                "scale='schedule': the group's initial_lr is 0, so lr / initial_lr is undefined; "
                "use scale='lr' or 'none', or start from a positive lr"
            )
        return lr / initial_lr
    raise ValueError(f"scale: expected one of {', '.join(map(repr, SCALES))}, got {convention!r}")
