"""The research examples compute what they claim (run small)."""

from __future__ import annotations

import importlib.util
import pathlib

import jax
import pytest

import jinit

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_signal_propagation_physics(tmp_path):
    sp = _load("signal_propagation")
    key, depth, width = jax.random.key(0), 24, 256
    he = sp.activation_rms(jinit.he_normal(), jax.nn.relu, depth, width, key)
    lecun = sp.activation_rms(jinit.lecun_normal(), jax.nn.relu, depth, width, key)
    # He keeps the ReLU activations' second moment (within a factor 2 over 24 layers) ...
    assert 0.5 < he[-1] / he[0] < 2.0, he
    # ... while LeCun halves it at every layer: RMS ratio 2^(-(depth-1)/2) ~ 2.5e-4.
    assert lecun[-1] / lecun[0] == pytest.approx(2 ** (-(depth - 1) / 2), rel=0.5)
    results = sp.run(depth=4, width=32)
    sp.plot(results, str(tmp_path / "sp.png"))
    assert (tmp_path / "sp.png").stat().st_size > 10_000
