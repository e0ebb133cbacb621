"""torch.optim components: SGD (coupled), SGDW and AdamW (decoupled, every rule), and a wrapper
that adds a decoupled rule to any optimizer."""

from decaylab.optim.adamw import AdamW
from decaylab.optim.sgd import SGD, SGDW
from decaylab.optim.wrapper import DecayWrapper

__all__ = ["SGD", "SGDW", "AdamW", "DecayWrapper"]
