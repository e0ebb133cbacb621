"""decaylab: weight regularization as correct, fast torch.optim components, and a sandbox to see what it does.

The names the seed notebooks use are importable from here::

    from decaylab import SGD, SGDW, AdamW, WeightRegularization, SimpleCNN
"""

from decaylab.models import DiagonalQuadratic, SimpleCNN
from decaylab.optim import SGD, SGDW, AdamW, DecayWrapper
from decaylab.param_groups import param_groups, split_decay
from decaylab.penalty import WeightRegularization
from decaylab.rules import RULES, SCALES

__version__ = "0.1.0"

__all__ = [
    "RULES",
    "SCALES",
    "SGD",
    "SGDW",
    "AdamW",
    "DecayWrapper",
    "DiagonalQuadratic",
    "SimpleCNN",
    "WeightRegularization",
    "param_groups",
    "split_decay",
]
