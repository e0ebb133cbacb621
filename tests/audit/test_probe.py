"""run_experiment: known weights in, injected gradients, recorded trajectories, errors captured."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from decaylab.audit.builder import Target, find_knobs
from decaylab.audit.probe import Experiment, gradient_at, gradient_pattern, run_experiment
from decaylab.audit.settings import NO_GRAD_WEIGHTS, WEIGHTS, ProbeSettings

from .synthetic import RaisesInStep

SETTINGS = ProbeSettings()


def run(factory, exp: Experiment):
    target = Target.of(factory)
    return run_experiment(target, find_knobs(target), SETTINGS, exp)


def test_gradient_pattern_fluctuates_drifts_and_is_not_aligned_with_the_weight_signs():
    u = gradient_pattern(len(WEIGHTS))
    assert u[:6].tolist() == [1.0, 1.5, -2.0, -1.0, 1.5, 2.0]
    signs = np.sign(np.array(WEIGHTS))
    big = np.abs(WEIGHTS) >= 3
    assert set((np.sign(u[big]) * signs[big]).tolist()) == {-1.0, 1.0}
    pattern = torch.tensor(u)
    assert torch.equal(gradient_at(1, 0.1, pattern), 0.2 * pattern)
    assert torch.equal(gradient_at(2, 0.1, pattern), -0.1 * pattern)


def test_sgd_trajectory_matches_the_closed_form():
    """Plain SGD with coupled wd and constant gradients: w_t = w_{t-1} - lr*(g_t + wd*w_{t-1})."""
    lr, wd, scale = 0.01, 0.01, 0.1
    traj = run(torch.optim.SGD, Experiment(lr, wd, grad_scale=scale))
    assert traj.ok
    w = np.array(WEIGHTS)
    u = gradient_pattern(len(w))
    for t in range(1, SETTINGS.steps + 1):
        g = scale * (2.0 if t % 2 else -1.0) * u
        w = w - lr * (g + wd * w)
        np.testing.assert_allclose(traj.weights[t], w, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(traj.lrs, lr)


def test_scheduler_multiplies_lr_after_the_switch():
    traj = run(torch.optim.SGD, Experiment(0.01, 0.0, lr_factor=3.0))
    assert traj.lrs[: SETTINGS.switch] == pytest.approx(0.01)
    assert traj.lrs[SETTINGS.switch :] == pytest.approx(0.03)


def test_parameter_without_grad_is_recorded_and_never_gets_a_grad():
    traj = run(torch.optim.AdamW, Experiment(0.01, 0.5, no_grad_param=True))
    assert traj.no_grad is not None
    np.testing.assert_array_equal(traj.no_grad, np.tile(NO_GRAD_WEIGHTS, (SETTINGS.steps + 1, 1)))


def test_float32_runs_record_float32_values():
    traj = run(torch.optim.AdamW, Experiment(0.01, 0.01, dtype="float32"))
    assert traj.weights[1, 0] == pytest.approx(np.float32(10.0) * np.float32(1 - 1e-4), rel=1e-7)


def test_errors_end_up_in_the_trajectory_with_their_stage():
    assert run(RaisesInStep, Experiment(0.01, 0.01)).error == "step 1: ValueError: step exploded"
    built = run(partial(torch.optim.SGD, momentum=-1.0), Experiment(0.01, 0.01))
    assert built.error.startswith("constructor: ValueError")
    assert np.isnan(built.weights[1:]).all()


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_create_graph_gradients_have_the_injected_value_and_a_constant_hessian():
    """Adahessian-style probes: the loss gives exactly g and Hessian-vector products h*v."""
    from decaylab.audit.probe import _GradientFeeder

    p = torch.nn.Parameter(torch.tensor([[1.0, -2.0, 3.0]], dtype=torch.float64))
    feeder = _GradientFeeder(p, create_graph=True, hessian=2.0)
    g = torch.tensor([[0.5, -0.25, 0.0]], dtype=torch.float64)
    feeder.set(g)
    feeder.feed()
    assert torch.equal(p.grad.detach(), g)
    v = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    (hv,) = torch.autograd.grad(p.grad, p, grad_outputs=v)
    assert torch.allclose(hv, 2.0 * v)
