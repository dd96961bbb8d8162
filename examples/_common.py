"""What the training examples share: the two-spirals task (a small non-convex classification)
and U[-a, a] built from jinit's one-sided uniform."""

from __future__ import annotations

import numpy as np

import jinit


def two_spirals(
    n: int, seed: int, noise: float = 0.05, half_turns: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """`n` points per class on two interleaved spirals of `half_turns` half-turns in [-1, 1]^2;
    labels 0/1."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.0, 1.0, n)) * half_turns * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (half_turns * np.pi)
    x = np.concatenate([arm, -arm]) + noise * rng.standard_normal((2 * n, 2))
    return x.astype(np.float32), np.concatenate([np.zeros(n), np.ones(n)]).astype(np.float32)


def symmetric_uniform(a: float) -> jinit.Initializer:
    """U[-a, a]: jinit's one-sided ``uniform(2a)``, shifted by -a."""
    base = jinit.uniform(2 * a)

    def init(key, shape, dtype=None, out_sharding=None):
        return base(key, shape, dtype, out_sharding) - a

    return init
