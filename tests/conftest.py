"""A strict test world: 8 simulated CPU devices, warnings are errors, a seeded key fixture, and
derandomized Hypothesis sweeps."""

# The device flags (8 simulated CPU devices) are set by the root conftest.py, which pytest loads
# first, before jax initialises its backends: one place for the doctests and the tests.
import os

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_numpy_rank_promotion", "raise")

# Hypothesis runs under the ``jinit`` profile: derandomized (the same examples on every run, so CI
# cannot flake), a bounded number of examples and no deadline (the first call of a shape
# compiles). ``HYPOTHESIS_PROFILE=jinit-deep`` draws many more.
settings.register_profile(
    "jinit",
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("jinit-deep", parent=settings.get_profile("jinit"), max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "jinit"))


@pytest.fixture
def key() -> jax.Array:
    return jax.random.key(20261123)


@pytest.fixture(scope="session")
def devices() -> list:
    devs = jax.devices()
    assert len(devs) == 8, f"tests expect 8 simulated CPU devices, found {len(devs)}"
    return devs
