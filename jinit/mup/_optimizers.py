"""muP's optimizers: each parameter's width multipliers, its learning-rate factor, and the
optax transformations (:func:`jinit.mup.adam`, ...) and coordinate check built on them. They
import optax when called (the rules are in :mod:`jinit.mup`'s docstring)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jinit import _checks
from jinit._tree import keys as _keys
from jinit._typing import public

if TYPE_CHECKING:
    import optax

Optimizer = Literal["adam", "sgd"]


@public("mup.WidthMult")
@dataclasses.dataclass(frozen=True)
class WidthMult:
    """How one parameter grows from the base model to the target model.

    Attributes:
      ninf: the number of width axes (axes whose size differs): 0 fixed, 1 vector-like,
        2 matrix-like.
      fan_in: the fan-in axis's width multiplier (1 where it is not a width axis or the
        parameter has fewer than two axes).
      fan_out: the fan-out axis's width multiplier (likewise).
      width: ``mup``'s ``InfShape.width_mult()``: the fan-in multiplier of a matrix-like
        parameter, the width axis's multiplier of a vector-like one, 1 for a fixed one.
    """

    ninf: int
    fan_in: float
    fan_out: float
    width: float

    def lr_factor(self, optimizer: Optimizer, readout: bool = False) -> float:
        """The factor ``mup`` applies to this parameter's learning rate."""
        if readout:
            return 1.0 / self.fan_in
        if optimizer == "adam":
            return 1.0 / self.width if self.ninf == 2 else 1.0
        if self.ninf == 2:
            return self.fan_out / self.fan_in
        return self.width if self.ninf == 1 else 1.0


def _shape(where: str, path: str, x: Any) -> tuple[int, ...]:
    shape = getattr(x, "shape", None)
    if shape is None:
        raise TypeError(
            f"`{where}`: every leaf must have a `.shape` (an array or jax.ShapeDtypeStruct); "
            f"{path!r} is {type(x).__name__}."
        )
    return tuple(int(d) for d in shape)


def _axis(where: str, name: str, axis: Any) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"`{where}({name}=...)` must be an int; got {axis!r}.")
    return int(axis)


@public("mup.width_mults")
def width_mults(base: Any, target: Any, *, in_axis: int = -2, out_axis: int = -1) -> Any:
    """Classifies every parameter of ``target`` against ``base``: a tree of :class:`WidthMult`.

    Args:
      base: the base model's parameters (arrays or ``jax.ShapeDtypeStruct``, e.g. from
        ``jax.eval_shape(model.init, ...)``), the model the hyperparameters were tuned on.
      target: the target model's parameters, the same tree structure.
      in_axis: the fan-in axis of parameters with two or more axes.
      out_axis: the fan-out axis.

    Returns:
      A tree like ``target`` whose leaves are :class:`WidthMult`.

    Raises:
      ValueError: if the trees differ in structure or a parameter in rank, a parameter has more
        than two width axes (as in ``mup``), or a matrix-like parameter's width axes are not
        its fan-in and fan-out axes.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jinit import mup
      >>> sds = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)
      >>> base = {"hidden": sds(64, 64), "bias": sds(64), "head": sds(64, 10)}
      >>> target = {"hidden": sds(256, 256), "bias": sds(256), "head": sds(256, 10)}
      >>> m = mup.width_mults(base, target)
      >>> m["hidden"].ninf, m["hidden"].width, m["bias"].width, m["head"].fan_in
      (2, 4.0, 4.0, 4.0)
    """
    where = "width_mults"
    in_axis, out_axis = _axis(where, "in_axis", in_axis), _axis(where, "out_axis", out_axis)
    b_flat, b_def = jax.tree_util.tree_flatten_with_path(base)
    t_flat, t_def = jax.tree_util.tree_flatten_with_path(target)
    if str(b_def) != str(t_def):
        raise ValueError(
            f"`{where}`: `base` and `target` must have the same tree structure; got {b_def} and "
            f"{t_def}."
        )
    out = []
    for (kp, b), (_, t) in zip(b_flat, t_flat, strict=True):
        path = _keys.path_str(kp)
        bs, ts = _shape(where, path, b), _shape(where, path, t)
        if len(bs) != len(ts):
            raise ValueError(
                f"`{where}`: {path!r} has shape {bs} in `base` but {ts} in `target` (another rank)."
            )
        mults = [t_ / b_ if b_ != t_ else None for b_, t_ in zip(bs, ts, strict=True)]
        if any(b_ <= 0 for b_ in bs):
            raise ValueError(f"`{where}`: {path!r} has an empty axis in `base`: {bs}.")
        inf = [i for i, m in enumerate(mults) if m is not None]
        if len(inf) > 2:
            raise ValueError(
                f"`{where}`: {path!r} has {len(inf)} width axes ({bs} -> {ts}); muP (like "
                "`mup`) defines at most two."
            )
        fan_in = fan_out = 1.0
        if len(ts) >= 2:
            fi, fo = in_axis % len(ts), out_axis % len(ts)
            fan_in, fan_out = mults[fi] or 1.0, mults[fo] or 1.0
            if len(inf) == 2 and set(inf) != {fi, fo}:
                raise ValueError(
                    f"`{where}`: {path!r} ({bs} -> {ts}) grows on axes {tuple(inf)}, which are "
                    f"not its fan-in and fan-out axes ({fi}, {fo}); pass `in_axis`/`out_axis`."
                )
        if len(inf) == 2:
            width = fan_in
        elif len(inf) == 1:
            width = float(mults[inf[0]])  # type: ignore[arg-type]
        else:
            width = 1.0
        out.append(WidthMult(len(inf), float(fan_in), float(fan_out), float(width)))
    return jax.tree.unflatten(t_def, out)


def _readout_matcher(readout: str | Callable[[str], bool] | None) -> Callable[[str], bool]:
    if readout is None:
        return lambda path: False
    if isinstance(readout, str):
        rx = re.compile(readout)
        return lambda path: rx.search(path) is not None
    if callable(readout):
        return readout
    raise TypeError(
        "`scale_by_mup(readout=...)` must be a regex string, a callable path -> bool or None; "
        f"got {type(readout).__name__}."
    )


@public("mup.lr_factors")
def lr_factors(
    base: Any,
    target: Any,
    optimizer: Optimizer,
    *,
    readout: str | Callable[[str], bool] | None = None,
    in_axis: int = -2,
    out_axis: int = -1,
) -> Any:
    """Each parameter's learning-rate factor under muP: a tree of floats like ``target``.

    The arguments are those of :func:`scale_by_mup`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jinit import mup
      >>> sds = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)
      >>> base = {"w": sds(64, 64), "b": sds(64), "head": sds(64, 10)}
      >>> target = {"w": sds(256, 256), "b": sds(256), "head": sds(256, 10)}
      >>> mup.lr_factors(base, target, "adam", readout="head")
      {'b': 1.0, 'head': 0.25, 'w': 0.25}
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(
            f"`scale_by_mup(optimizer=...)` must be 'adam' or 'sgd'; got {optimizer!r}."
        )
    is_readout = _readout_matcher(readout)
    mults = width_mults(base, target, in_axis=in_axis, out_axis=out_axis)
    flat, treedef = jax.tree_util.tree_flatten_with_path(
        mults, is_leaf=lambda x: isinstance(x, WidthMult)
    )
    paths = [_keys.path_str(kp) for kp, _ in flat]
    hits = [is_readout(p) for p in paths]
    if readout is not None and not any(hits):
        raise ValueError(
            f"`scale_by_mup(readout={readout!r})` matches no parameter; the paths are "
            f"{paths[:8]}{' ...' if len(paths) > 8 else ''}."
        )
    factors = [m.lr_factor(optimizer, hit) for (_, m), hit in zip(flat, hits, strict=True)]
    return jax.tree.unflatten(treedef, factors)


@public("mup.scale_by_mup")
def scale_by_mup(
    base: Any,
    target: Any,
    optimizer: Optimizer,
    *,
    readout: str | Callable[[str], bool] | None = None,
    in_axis: int = -2,
    out_axis: int = -1,
) -> optax.GradientTransformation:
    """Scales each parameter's update by its muP learning-rate factor.

    Chain it after an optimizer whose update is proportional to its learning rate (Adam-like:
    ``optimizer="adam"``; SGD-like, with or without momentum: ``optimizer="sgd"``); the product is
    ``mup.MuAdam`` / ``mup.MuSGD``. :func:`adam`, :func:`adamw` and :func:`sgd` do the chaining.

    Args:
      base: the base model's parameters or their shapes.
      target: the target model's parameters or their shapes (the tree being optimised).
      optimizer: ``"adam"`` or ``"sgd"``: which of muP's two rule sets (see the module table).
      readout: the readout parameters, written as a plain ``Dense`` initialised with
        :func:`jinit.mup.readout`: a regex searched in each parameter's ``/``-joined path
        (``"head/kernel"``), or a callable ``path -> bool``. A regex matching nothing is an
        error.
      in_axis: the fan-in axis of parameters with two or more axes.
      out_axis: the fan-out axis.

    Returns:
      An ``optax.GradientTransformation`` (stateless).

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from jinit import mup
      >>> sds = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)
      >>> base, target = {"w": sds(64, 64)}, {"w": sds(256, 256)}
      >>> tx = optax.chain(optax.adam(1e-3), mup.scale_by_mup(base, target, "adam"))
      >>> params = {"w": jnp.ones((256, 256))}
      >>> updates, _ = tx.update({"w": jnp.ones((256, 256))}, tx.init(params))
      >>> round(float(updates["w"][0, 0]), 7)  # -lr / width_mult (Adam's eps aside)
      -0.00025
    """
    import optax

    factors = lr_factors(
        base, target, optimizer, readout=readout, in_axis=in_axis, out_axis=out_axis
    )

    def init_fn(params: Any) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        scaled = jax.tree.map(lambda u, f: u * jnp.asarray(f, u.dtype), updates, factors)
        return scaled, state

    return optax.GradientTransformation(init_fn, update_fn)


@public("mup.adam")
def adam(
    learning_rate: optax.ScalarOrSchedule,
    base: Any,
    target: Any,
    *,
    readout: str | Callable[[str], bool] | None = None,
    **kwargs: Any,
) -> optax.GradientTransformation:
    """``mup.MuAdam``: ``optax.adam(learning_rate, **kwargs)`` with muP's per-parameter rates.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jinit import mup
      >>> sds = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)
      >>> tx = mup.adam(1e-3, {"w": sds(64, 64)}, {"w": sds(512, 512)})
    """
    import optax

    return optax.chain(
        optax.adam(learning_rate, **kwargs), scale_by_mup(base, target, "adam", readout=readout)
    )


@public("mup.adamw")
def adamw(
    learning_rate: optax.ScalarOrSchedule,
    base: Any,
    target: Any,
    *,
    readout: str | Callable[[str], bool] | None = None,
    **kwargs: Any,
) -> optax.GradientTransformation:
    """``mup.MuAdamW(decoupled_wd=True)``: ``optax.adamw`` with muP's per-parameter rates (the
    decay, multiplied by the learning rate in optax, scales with it)."""
    import optax

    return optax.chain(
        optax.adamw(learning_rate, **kwargs), scale_by_mup(base, target, "adam", readout=readout)
    )


@public("mup.sgd")
def sgd(
    learning_rate: optax.ScalarOrSchedule,
    base: Any,
    target: Any,
    *,
    readout: str | Callable[[str], bool] | None = None,
    **kwargs: Any,
) -> optax.GradientTransformation:
    """``mup.MuSGD``: ``optax.sgd(learning_rate, **kwargs)`` (momentum too) with muP's rates."""
    import optax

    return optax.chain(
        optax.sgd(learning_rate, **kwargs), scale_by_mup(base, target, "sgd", readout=readout)
    )


@public("mup.coord_check")
def coord_check(
    init: Callable[[int, jax.Array], Any],
    activations: Callable[[Any, jax.Array], dict[str, jax.Array]],
    loss: Callable[[Any, jax.Array, jax.Array], jax.Array],
    optimizer: Callable[[int], optax.GradientTransformation],
    widths: Sequence[int],
    batch: tuple[jax.Array, jax.Array],
    *,
    steps: int = 4,
    seeds: int = 3,
) -> dict[str, np.ndarray]:
    """muP's coordinate check: how much each layer's activations move in training, per width.

    For each width, trains ``steps`` steps from ``seeds`` initialisations on ``batch`` and
    records, for every layer, the mean absolute change of its activations from their initial
    values, :math:`\\operatorname{mean}|h_t - h_0|`, on the same batch. Under muP these curves
    do not depend on the width; under the standard parametrization with Adam, hidden and output
    changes grow with it (Yang et al. 2022, Figure 5).

    Args:
      init: ``init(width, key) -> params``.
      activations: ``activations(params, x) -> {layer name: activations}``.
      loss: ``loss(params, x, y) -> scalar``.
      optimizer: ``optimizer(width) -> optax.GradientTransformation``.
      widths: the widths to compare (e.g. ``(64, 128, 256, 512, 1024)``).
      batch: ``(x, y)``.
      steps: training steps.
      seeds: initialisations averaged per width.

    Returns:
      ``{layer name: array (len(widths), steps)}`` of mean absolute activation changes, averaged
      over the seeds.

    Examples:
      See ``tests/test_mup.py::test_coord_check_is_flat_under_mup_and_grows_under_sp``.
    """
    import optax

    steps = _checks.check_count("coord_check", "steps", steps)
    seeds = _checks.check_count("coord_check", "seeds", seeds)
    if not widths:
        raise ValueError("`coord_check(widths=...)` must name at least one width.")
    x, y = batch
    out: dict[str, np.ndarray] = {}
    for wi, width in enumerate(widths):
        tx = optimizer(width)

        @jax.jit
        def run(key: jax.Array, tx: Any = tx, width: int = width) -> dict[str, jax.Array]:
            params = init(width, key)
            h0 = activations(params, x)
            state = tx.init(params)

            def step(carry: Any, _: Any) -> tuple[Any, dict[str, jax.Array]]:
                params, state = carry
                grads = jax.grad(loss)(params, x, y)
                updates, state = tx.update(grads, state, params)
                params = optax.apply_updates(params, updates)
                h = activations(params, x)
                return (params, state), {k: jnp.mean(jnp.abs(h[k] - h0[k])) for k in h0}

            return jax.lax.scan(step, (params, state), None, length=steps)[1]

        keys = jax.random.split(jax.random.key(0), seeds)
        per_seed = [jax.device_get(run(k)) for k in keys]
        for name in per_seed[0]:
            row = np.mean([s[name] for s in per_seed], axis=0)
            out.setdefault(name, np.zeros((len(widths), steps)))[wi] = row
    return out


@public("mup.render")
def render(check: dict[str, np.ndarray], widths: Sequence[int]) -> str:
    """A coordinate check as a table: one row per layer, the last step's change per width, and
    the ratio of the widest to the narrowest (about 1 under muP)."""
    head = ["layer", *(f"w={w}" for w in widths), "widest/narrowest"]
    rows = [
        [name, *(f"{v:.3g}" for v in a[:, -1]), f"{a[-1, -1] / a[0, -1]:.2f}"]
        for name, a in check.items()
    ]
    widths_ = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(r, widths_, strict=True)) for r in [head, *rows]
    )
