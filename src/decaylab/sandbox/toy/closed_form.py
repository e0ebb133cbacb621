r"""Closed-form paths of SGD (optionally heavy-ball momentum) on one coordinate of a diagonal quadratic.

On ``loss = c/2 * w**2`` every sandbox method with an SGD base moves one coordinate by an *affine*
recurrence, as long as ``sign(w)`` does not change (the L1 rules only see the sign)::

    b_t     = mu * b_{t-1} + k * w_t + v          (b_{-1} = 0: torch's first buffer is the gradient)
    w_{t+1} = a * w_t - lr * b_t + u

==================  ================  ==========  ===================  ================  ==================
method              a                 k           u                    v                 exact
==================  ================  ==========  ===================  ================  ==================
none                1                 c           0                    0                 always
coupled_l2          1                 c + lam     0                    0                 always
decoupled_l2        1 - s*lam         c           0                    0                 always
penalty_l2          1                 c + 2*lam   0                    0                 always
toward_reference    1 - s*lam         c           s*lam*w_0            0                 always
l1 (sign)           1                 c           -s*lam*sign(w_0)     0                 until sign(w) flips
penalty_l1          1                 c           0                    lam*sign(w_0)     until sign(w) flips
proximal_l1         1                 c           -s*lam*sign(w_0)     0                 see below
elastic_net         1 - s*lam         c           -s*lam*sign(w_0)     0                 see below
==================  ================  ==========  ===================  ================  ==================

``s`` is the decoupled scale (``lr`` for ``scale="lr"``, 1 for ``"none"`` and, with a constant lr,
``"schedule"``). The proximal rules follow the affine recurrence until the soft threshold clamps
``w`` to an exact zero; with plain GD (``mu = 0``) zero is absorbing (the gradient ``c*0`` and every
decay keep it there), so the path is exact for every step. With momentum the clamped zero is
exact, the steps after it are not predicted (the buffer carries ``w`` off zero again).

Solving the recurrence: with ``x_t = (w_t, b_{t-1})`` it is ``x_{t+1} = M x_t + beta`` with the
companion-type matrix and forcing

.. math::
    M = \begin{pmatrix} a - \eta k & -\eta\mu \\ k & \mu \end{pmatrix},\qquad
    \beta = \begin{pmatrix} u - \eta v \\ v \end{pmatrix},

so :math:`x_t = M^t x_0 + S_t \beta` with :math:`S_t = \sum_{j<t} M^j` (:func:`forcing_response`:
spectral projectors times geometric sums, or :math:`(I - M^t)(I - M)^{-1}` through the fixed point).
Cayley-Hamilton gives the power in closed form,

.. math::
    M^t = U_t M - D\,U_{t-1} I, \qquad U_t = \frac{r_1^t - r_2^t}{r_1 - r_2} = \sum_{i=0}^{t-1} r_1^i r_2^{t-1-i},

where :math:`r_{1,2} = m \pm \sqrt{m^2 - D}` are the eigenvalues, :math:`m = \mathrm{tr}\,M / 2`,
:math:`D = \det M = a\mu`. :func:`lucas_u` evaluates :math:`U_t` without cancellation: for
complex roots :math:`U_t = \rho^{t-1}\sin(t\theta)/\sin\theta`, for well separated real roots the
quotient above, and for nearly equal roots (:math:`t\,|r_1 - r_2| < 2|m|`) the exact expansion
:math:`U_t = m^{t-1}\sum_j \binom{t}{2j+1} (h^2/m^2)^j`, :math:`h^2 = m^2 - D`.
Without momentum the path is the scalar :math:`w_t = r^t w_0 + (u - \eta v)\sum_{j<t} r^j`,
:math:`r = a - \eta k`.

Seed 2 (``w1**2/20 + w2**2``, lr 0.01, coupled lam 0.01, from (1, 1)): factors 0.9989 / 0.9799,
``w1(100) = 0.8957799``, ``w1(1000) = 0.3326696``; with momentum 0.9, ``w1(200) = 0.09464``
(coupled) vs ``0.11773`` (decoupled, s = lr).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from decaylab.rules import decay_scale
from decaylab.sandbox.methods import check_method

Validity = Literal["always", "until_sign_change", "until_clamp"]

#: methods whose one-coordinate recurrence is affine (while the sign holds), so a closed form exists.
CLOSED_FORM_METHODS: tuple[str, ...] = (
    "none",
    "coupled_l2",
    "decoupled_l2",
    "penalty_l2",
    "toward_reference",
    "l1",
    "penalty_l1",
    "proximal_l1",
    "elastic_net",
)


@dataclass(frozen=True)
class Recurrence:
    """One coordinate's step, ``b = mu*b + k*w + v``, ``w = a*w - lr*b + u`` (see the module docstring).

    ``validity`` says how long the affine form holds: ``"always"``, ``"until_sign_change"`` (sign
    L1 rules: the forcing uses ``sign(w_0)``) or ``"until_clamp"`` (proximal rules: the soft
    threshold ``threshold`` sets ``w`` to exactly 0).
    """

    a: float
    k: float
    lr: float
    momentum: float = 0.0
    u: float = 0.0
    v: float = 0.0
    validity: Validity = "always"
    threshold: float = 0.0

    @property
    def matrix(self) -> np.ndarray:
        """``M`` of ``x_{t+1} = M x_t + beta`` with ``x_t = (w_t, b_{t-1})``."""
        return np.array([[self.a - self.lr * self.k, -self.lr * self.momentum], [self.k, self.momentum]])

    @property
    def forcing(self) -> np.ndarray:
        """``beta`` of ``x_{t+1} = M x_t + beta``."""
        return np.array([self.u - self.lr * self.v, self.v])


def recurrence_for(
    method: str,
    *,
    curvature: float,
    w0: float,
    lr: float,
    strength: float,
    momentum: float = 0.0,
    scale: str = "lr",
    base: str = "sgd",
) -> Recurrence | None:
    """The affine recurrence of ``method`` (as :func:`~decaylab.sandbox.methods.build_method` builds it)
    on ``curvature/2 * w**2`` from ``w0``, or ``None`` when there is none (an Adam base: its
    per-coordinate normalisation is not affine).

    ``scale`` is the decoupled convention at a constant lr (``"schedule"`` then equals ``"none"``).
    ``elastic_net`` uses ``strength`` for both parts, as ``build_method`` does.
    """
    check_method(method)
    if base != "sgd":
        return None
    s = decay_scale(scale, lr, lr)
    lam, c = float(strength), float(curvature)
    sign = float(np.sign(w0))
    common = dict(lr=float(lr), momentum=float(momentum))
    table: dict[str, Recurrence] = {
        "none": Recurrence(a=1.0, k=c, **common),
        "coupled_l2": Recurrence(a=1.0, k=c + lam, **common),
        "decoupled_l2": Recurrence(a=1.0 - s * lam, k=c, **common),
        "penalty_l2": Recurrence(a=1.0, k=c + 2.0 * lam, **common),
        "toward_reference": Recurrence(a=1.0 - s * lam, k=c, u=s * lam * w0, **common),
        "l1": Recurrence(a=1.0, k=c, u=-s * lam * sign, validity="until_sign_change", **common),
        "penalty_l1": Recurrence(a=1.0, k=c, v=lam * sign, validity="until_sign_change", **common),
        "proximal_l1": Recurrence(a=1.0, k=c, u=-s * lam * sign, validity="until_clamp", threshold=s * lam, **common),
        "elastic_net": Recurrence(
            a=1.0 - s * lam, k=c, u=-s * lam * sign, validity="until_clamp", threshold=s * lam, **common
        ),
    }
    return table[method]


def lucas_u(m: float, h2: float, t: np.ndarray) -> np.ndarray:
    """``U_t = (r1**t - r2**t) / (r1 - r2)`` for the roots ``r = m +- sqrt(h2)``, for integer ``t >= 0``.

    ``U_0 = 0``, ``U_1 = 1``, ``U_{t+1} = 2m U_t - (m**2 - h2) U_{t-1}``; evaluated without the
    cancellation of the quotient when the roots are (nearly) equal.
    """
    t = np.asarray(t, dtype=np.int64)
    if np.any(t < 0):
        raise ValueError("t: expected integers >= 0")
    tf = t.astype(np.float64)
    out = np.zeros(t.shape, dtype=np.float64)
    h = np.sqrt(abs(h2))
    if m == 0.0 and h == 0.0:  # nilpotent: U_1 = 1, every other U_t = 0
        out[t == 1] = 1.0
        return out
    near = tf * h < abs(m)  # roots close on the scale of t: the exact binomial expansion converges fast
    if np.any(near):
        tn = tf[near]
        x = h2 / (m * m) if h2 else 0.0
        term = tn.copy()  # C(t, 1)
        total = term.copy()
        for j in range(40):
            term = term * (tn - 2 * j - 1) * (tn - 2 * j - 2) / ((2 * j + 2) * (2 * j + 3)) * x
            total += term
            if not np.any(np.abs(term) > 1e-18 * np.abs(total)):
                break
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            out[near] = np.where(tn == 0, 0.0, np.power(m, tn - 1) * total)
    far = ~near
    if np.any(far):
        tf_far = tf[far]
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            if h2 < 0:  # complex roots rho*exp(+-i*theta); D = m**2 - h2 > 0
                rho = np.sqrt(m * m - h2)
                theta = np.arctan2(h, m)
                out[far] = np.power(rho, tf_far - 1) * np.sin(tf_far * theta) / np.sin(theta)
            else:  # distinct real roots; the smaller one from r1*r2 = D, without cancellation
                r1 = m + np.copysign(h, m) if m != 0 else h
                r2 = (m * m - h2) / r1
                out[far] = (np.power(r1, tf_far) - np.power(r2, tf_far)) / (r1 - r2)
    return out


def matrix_power_row(matrix: np.ndarray, t: np.ndarray) -> np.ndarray:
    """First row of ``matrix**t`` for each ``t`` (shape ``(len(t), 2)``), via ``M^t = U_t M - D U_{t-1} I``."""
    t = np.asarray(t, dtype=np.int64)
    m = 0.5 * (matrix[0, 0] + matrix[1, 1])
    det = matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0]
    h2 = m * m - det
    u_t = lucas_u(m, h2, t)
    u_prev = lucas_u(m, h2, np.maximum(t - 1, 0))
    row = np.empty((t.size, 2))
    row[:, 0] = np.where(t == 0, 1.0, u_t * matrix[0, 0] - det * u_prev)
    row[:, 1] = np.where(t == 0, 0.0, u_t * matrix[0, 1])
    return row


def geometric_sum(sigma: float, t: np.ndarray) -> np.ndarray:
    """``sum_{j<t} r**j`` for ``r = 1 - sigma``: ``(1 - r**t) / sigma`` (``t`` when ``sigma == 0``).

    Takes ``sigma = 1 - r`` itself, computed by the caller without cancellation, and uses
    ``expm1`` / ``log1p`` so the sum stays accurate when ``r`` is within rounding of 1.
    """
    tf = np.asarray(t, dtype=np.float64)
    if sigma == 0.0:
        return tf
    with np.errstate(over="ignore", invalid="ignore"):
        if -1.0 < sigma < 1.0:
            return -np.expm1(tf * np.log1p(-sigma)) / sigma
        return (1.0 - np.power(1.0 - sigma, tf)) / sigma


def forcing_response(rec: Recurrence, t: np.ndarray) -> np.ndarray:
    """``w``-component of ``S_t beta`` with ``S_t = sum_{j<t} M^j``: what the constant forcing adds.

    With real, well separated eigenvalues ``r_i = 1 - sigma_i`` this is ``sum_i P_i g(sigma_i, t) beta``
    (``P_i`` the spectral projectors, ``g`` :func:`geometric_sum`), where ``sigma_i`` are the roots of
    ``sigma**2 - tr(I - M) sigma + det(I - M)``, both coefficients formed from the parameters without
    cancellation; this stays exact when an eigenvalue is within rounding of 1 (a nearly flat coordinate
    with a constant L1 push). Otherwise (complex or nearly equal roots, which keep ``det(I - M)`` away
    from 0 for momentum < 1) it is ``(I - M^t) x*`` with the fixed point ``x* = (I - M)^{-1} beta``.
    """
    matrix, beta = rec.matrix, rec.forcing
    det = (1.0 - rec.a) * (1.0 - rec.momentum) + rec.lr * rec.k  # det(I - M)
    trace = (1.0 - rec.a) + rec.lr * rec.k + (1.0 - rec.momentum)  # tr(I - M)
    disc = trace * trace - 4.0 * det
    if disc > 0.0 and trace > 0.0:
        gap = np.sqrt(disc)
        if gap > 1e-4 * max(abs(1.0 - trace / 2.0), 1e-300):
            sigma_a = 0.5 * (trace + gap)
            sigma_b = det / sigma_a
            first_row = matrix[0]  # (M - r_b I)[0] / (r_a - r_b), with r_a - r_b = sigma_b - sigma_a = -gap
            proj_a = (first_row - np.array([1.0 - sigma_b, 0.0])) / -gap
            proj_b = (first_row - np.array([1.0 - sigma_a, 0.0])) / gap
            return (
                np.outer(geometric_sum(sigma_a, t), proj_a @ beta)[:, 0]
                + np.outer(geometric_sum(sigma_b, t), proj_b @ beta)[:, 0]
            )
    fixed = np.linalg.solve(np.eye(2) - matrix, beta)
    return fixed[0] - matrix_power_row(matrix, t) @ fixed


def affine_path(rec: Recurrence, w0: float, steps: int) -> np.ndarray:
    """``w_t`` for ``t = 0..steps`` of the affine recurrence (ignoring ``validity``):
    ``w_t = (M^t x_0)_w + (S_t beta)_w`` with ``x_0 = (w0, 0)``."""
    t = np.arange(steps + 1)
    if rec.momentum == 0.0:
        sigma = (1.0 - rec.a) + rec.lr * rec.k  # 1 - r without cancellation
        with np.errstate(over="ignore", invalid="ignore"):
            homogeneous = np.power(rec.a - rec.lr * rec.k, t.astype(np.float64)) * w0
            return homogeneous + (rec.u - rec.lr * rec.v) * geometric_sum(sigma, t)
    homogeneous = matrix_power_row(rec.matrix, t) @ np.array([w0, 0.0])
    if not rec.forcing.any():
        return homogeneous
    return homogeneous + forcing_response(rec, t)


def closed_form_path(rec: Recurrence, w0: float, steps: int) -> np.ndarray:
    """The exact path ``w_0..w_steps``; ``NaN`` from the first step the closed form does not cover.

    ``"until_sign_change"``: exact up to and including the first ``w_t`` whose sign differs from
    ``w_0``'s (it was computed with the old sign); later steps are NaN.
    ``"until_clamp"``: at the first step the affine value reaches the other side of zero the soft
    threshold gives exactly 0 (provided the pre-threshold value lies within ``threshold`` of 0);
    without momentum zero is absorbing, so every later step is 0; with momentum later steps are NaN.
    """
    path = affine_path(rec, w0, steps)
    sign = np.sign(w0)
    if rec.validity == "always" or sign == 0:
        return path
    flipped = np.flatnonzero(sign * path <= 0)
    if flipped.size == 0:
        return path
    first = int(flipped[0])
    out = path.copy()
    if rec.validity == "until_sign_change":
        out[first + 1 :] = np.nan
        return out
    # until_clamp: the value before the threshold is path + sign*threshold; it clamps to 0 when within it
    if sign * path[first] >= -2.0 * rec.threshold:
        out[first] = 0.0
        out[first + 1 :] = 0.0 if rec.momentum == 0.0 else np.nan
    else:  # overshoot past the threshold band (lr*c > 1): the sign flips, no closed form from here on
        out[first:] = np.nan
    return out
