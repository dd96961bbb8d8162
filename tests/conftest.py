"""A strict test world: 8 simulated CPU devices, warnings are errors, a seeded key fixture."""

# The device flags (8 simulated CPU devices) are set by the root conftest.py, which pytest loads
# first, before jax initialises its backends: one place for the doctests and the tests.
import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key() -> jax.Array:
    return jax.random.key(20261123)


@pytest.fixture(scope="session")
def devices() -> list:
    devs = jax.devices()
    assert len(devs) == 8, f"tests expect 8 simulated CPU devices, found {len(devs)}"
    return devs
