"""Correctness checks of a peer's tree against the preset and against jinit's reference."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.peers import Context

# A peer with its own keys must match jinit's per-leaf std within sampling error and this.
STD_TOLERANCE = 0.005


def tree_error(flat: dict[str, Any], ctx: Context) -> str | None:
    """What differs between a peer's flat tree and the preset's paths, shapes and dtype; None if
    nothing does."""
    got = {p: tuple(np.shape(a)) for p, a in flat.items()}
    if got != ctx.shapes:
        missing = sorted(set(ctx.shapes) - set(got))[:3]
        extra = sorted(set(got) - set(ctx.shapes))[:3]
        bad = [p for p in ctx.shapes if p in got and got[p] != ctx.shapes[p]][:3]
        return f"tree differs from the preset: missing {missing}, extra {extra}, shape {bad}"
    dtypes = {str(np.asarray(a).dtype) for a in flat.values()}
    if dtypes != {str(ctx.dtype)}:
        return f"dtypes {sorted(dtypes)}, expected {ctx.dtype}"
    return None


def compare_stats(
    stats: dict[str, tuple[float, float, int]], ref: dict[str, tuple[float, float, int]]
) -> tuple[float, bool, str]:
    """Worst relative std difference over random leaves, whether every leaf is within sampling
    tolerance (5 standard errors + 0.5%), and the worst leaf; constant leaves must match exactly.
    """
    worst, ok, where = 0.0, True, ""
    for path, (mean, std, n) in stats.items():
        rmean, rstd, _ = ref[path]
        if rstd == 0.0:
            if std != 0.0 or mean != rmean:
                return float("inf"), False, path
            continue
        d = abs(std / rstd - 1.0)
        ok = ok and d <= 5.0 / np.sqrt(n) + STD_TOLERANCE
        if d > worst:
            worst, where = d, path
    return worst, ok, where
