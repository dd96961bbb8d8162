"""Every python block of README.md runs as written, top to bottom."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)

# Runs in a fresh process: a README block may set global jax options (the compilation cache).
RUNNER = """
import pathlib, re, sys, textwrap
text = pathlib.Path(sys.argv[1]).read_text()
namespace = {"__name__": "__readme__"}
for m in re.finditer(sys.argv[2], text, re.MULTILINE | re.DOTALL):
    line = text.count("\\n", 0, m.start()) + 2
    code = textwrap.dedent(m.group(2))
    exec(compile(code, f"README.md, the block at line {line}", "exec"), namespace)
    print("ran the block at line", line)
"""


def blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [textwrap.dedent(m.group(2)) for m in FENCE.finditer(text)]


def test_readme_shows_linen_nnx_stacked_and_torch_usage():
    code = "\n".join(blocks())
    assert re.search(r"^import .*\bjinit\.flax\b", code, re.MULTILINE), "import jinit.flax"
    for needed in ("init_linen(", "init_nnx(", "jinit.stacked(", "explain("):
        assert needed in code, needed
    assert "jinit.torch.defaults()" in code
    for needed in ("jinit.equinox.init_eqx(", "jinit.equinox.defaults()", "eqx.filter_vmap("):
        assert needed in code, needed


def test_every_readme_python_block_runs(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(ROOT / "README.md"), FENCE.pattern],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ran the block") == len(blocks()) >= 7, result.stdout
