"""The sandbox: named methods, probes, toy problems, training runs, studies and their store."""

from decaylab.sandbox.methods import METHODS, Method, Regularized, build_method

__all__ = ["METHODS", "Method", "Regularized", "build_method"]
