"""Models used by the seeds and the sandbox."""

from decaylab.models.linear import LinearModel
from decaylab.models.mlp import MLP
from decaylab.models.quadratic import DiagonalQuadratic
from decaylab.models.simple import SimpleCNN

__all__ = ["MLP", "DiagonalQuadratic", "LinearModel", "SimpleCNN"]
