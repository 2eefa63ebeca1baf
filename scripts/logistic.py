"""The logistic fit shared by the calibration scripts (a sibling module, imported by name).

Weights over the columns of `x` (give a column of ones for a bias), fitted by L-BFGS to the
summed cross-entropy plus `l2` × the squared weights.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize  # type: ignore[import-untyped]


def logistic_loss(w: np.ndarray, x: np.ndarray, y: np.ndarray, l2: float
                  ) -> tuple[float, np.ndarray]:
    z = x @ w
    p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
    eps = 1e-12
    loss = -float(np.sum(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))) + l2 * (w @ w)
    return loss, x.T @ (p - y) + 2 * l2 * w


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.0) -> np.ndarray:
    """The weights, one per column of `x`."""
    found: np.ndarray = minimize(logistic_loss, np.zeros(x.shape[1]), args=(x, y, l2),
                                 jac=True, method="L-BFGS-B").x
    return found
