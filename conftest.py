"""Root conftest: the doctests in jinit/ run in the same strict world as tests/."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# libtpu (the TPU compiler, used deviceless by tests/test_tpu_compile.py) otherwise takes a
# machine-wide lock, which the test workers (and a benchmark running beside) would fight over.
os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
