"""Models used by the seeds and the sandbox."""

from decaylab.models.quadratic import DiagonalQuadratic
from decaylab.models.simple import SimpleCNN

__all__ = ["DiagonalQuadratic", "SimpleCNN"]
