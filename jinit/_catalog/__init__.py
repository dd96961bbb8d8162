"""The catalog: jinit's public names by family, in reading order, in one table; and the room
where the families live.

Each family is one module of this package (``basic.py``: constants and plain distributions,
``variance.py``: Glorot, He, LeCun, ``orthogonal.py``, ``structured.py``, ``zero.py``,
``research.py``, ``gates.py``, ``deepnorm.py``, ``combinators.py``: ``scaled`` and
``portable``, ``stacked.py``, ``layout.py`` and ``equinox_defaults.py``: ``jinit.equinox``'s),
or of a family namespace's package (``jinit/torch/``, ``jinit/keras/``, ``jinit/haiku/``,
``jinit/mup/``), written under the name users write. What the families share is outside:
``jinit/_core.py`` (``make_init``, ``formula_init``), ``_checks.py``, ``_fans.py``,
``_value.py``, ``_scaled_draw.py``; the engine (``_tree/``, ``_rng/``) sits below them all.

Everything that lists the families is made from ``FAMILIES`` or checked against it:
``jinit.__all__`` is its top-level names in this order (``top_level_names``); the docs' catalog
page (``docs/conf.py``) has one section per family, in this order, with its title, its module's
summary and its names; README.md's catalog table has a row for every family with a ``readme``
label, naming each of its names (``tests/test_catalog.py``). So a new initializer, or a new
family, is one entry here (CONTRIBUTING.md). This module imports nothing, so the docs and the
tests read it without building anything.
"""

from __future__ import annotations

from typing import NamedTuple


class Family(NamedTuple):
    """One family of the catalog.

    Attributes:
      module: the private module its code is written in, relative to ``jinit``
        (``"_catalog.variance"``, ``"torch._initializers"``);
        its docs section opens with the first line of that module's docstring.
      title: the heading of its docs section.
      names: its public names as users write them after ``jinit.``: top level (``"lecun_normal"``)
        or in a family namespace (``"torch.kaiming_uniform"``).
      readme: how its row of README.md's catalog table begins (families may share a row), or
        None for the tools that are not initializers (on the docs' catalog page only).
    """

    module: str
    title: str
    names: tuple[str, ...]
    readme: str | None = None


JAX = "`jax.nn.initializers`"
DEPTH = "depth/width-aware"
STRUCTURED = "structured"

FAMILIES: tuple[Family, ...] = (
    Family(
        "_catalog.basic",
        "Constants and plain distributions",
        ("constant", "normal", "ones", "truncated_normal", "uniform", "zeros"),
        JAX,
    ),
    Family(
        "_catalog.variance",
        "Variance scaling: Glorot, He, LeCun",
        (
            "glorot_normal",
            "glorot_uniform",
            "he_normal",
            "he_uniform",
            "kaiming_normal",
            "kaiming_uniform",
            "lecun_normal",
            "lecun_uniform",
            "variance_scaling",
            "xavier_normal",
            "xavier_uniform",
        ),
        JAX,
    ),
    Family(
        "torch._initializers",
        "PyTorch's schemes and layer defaults",
        (
            "calculate_gain",
            "torch.bias_default",
            "torch.embedding_default",
            "torch.kaiming_normal",
            "torch.kaiming_uniform",
            "torch.linear_default",
            "torch.trunc_normal",
            "torch.xavier_normal",
            "torch.xavier_uniform",
        ),
        "`jinit.torch`",
    ),
    Family(
        "torch._defaults",
        "PyTorch's defaults for a whole Flax model",
        ("torch.defaults",),
        "`jinit.torch`",
    ),
    Family(
        "keras._initializers",
        "Keras 3 semantics",
        (
            "keras.conv_default",
            "keras.dense_default",
            "keras.embedding_default",
            "keras.identity",
            "keras.orthogonal",
            "keras.random_normal",
            "keras.random_uniform",
            "keras.truncated_normal",
            "keras.variance_scaling",
        ),
        "`jinit.keras`",
    ),
    Family(
        "haiku._initializers",
        "Haiku semantics",
        (
            "haiku.conv_default",
            "haiku.embed_default",
            "haiku.linear_default",
            "haiku.orthogonal",
            "haiku.variance_scaling",
        ),
        "`jinit.haiku`",
    ),
    Family("_catalog.orthogonal", "Orthogonal", ("delta_orthogonal", "orthogonal"), JAX),
    Family(
        "_catalog.structured",
        "Structured: identity, Dirac, sparse",
        ("dirac", "identity", "sparse"),
        STRUCTURED,
    ),
    Family("_catalog.zero", "ZerO and Hadamard", ("hadamard", "zero_init"), STRUCTURED),
    Family("_catalog.combinators", "Combinators", ("scaled",), DEPTH),
    Family(
        "_catalog.research",
        "Depth-aware research schemes",
        ("fixup", "scaled_residual", "t_fixup", "t_fixup_embedding", "t_fixup_scale"),
        DEPTH,
    ),
    Family("_catalog.gates", "Residual gates", ("rezero", "skipinit"), DEPTH),
    Family("_catalog.deepnorm", "DeepNorm", ("deepnorm", "deepnorm_alpha", "deepnorm_beta"), DEPTH),
    Family(
        "mup._initializers",
        "Maximal update parametrisation (muP)",
        ("mup.hidden", "mup.readout"),
        DEPTH,
    ),
    Family("_catalog.stacked", "Stacked (scanned) layers", ("stacked",)),
    Family("_tree.api", "Whole trees", ("init_tree",)),
    Family("_catalog.combinators", "The same values on every backend", ("portable",)),
    Family("_tree.rules", "Rules", ("full_match",)),
    Family("_explain", "Which rule gives which parameter", ("explain", "Explanation", "ParamRule")),
    Family("_tree.keys", "Path keys", ("key_for_path", "keys_like", "path_str")),
    Family("_describe", "Describing an initializer", ("describe", "Description")),
    Family("_signal", "Signal propagation", ("LayerSignal", "signal_propagation", "SignalReport")),
    Family("_fans", "Fans", ("compute_fans", "einsum_axes", "EinsumAxes"), "fans"),
    Family("_rng.draws", "The sampling protocol", ("Draw", "Sampling")),
    Family("_value", "Initializers as values", ("Init",)),
    Family("_typing", "Types", ("Initializer",)),
)

# The family namespaces: ``jinit.torch.kaiming_uniform`` is the name ``"torch.kaiming_uniform"``.
NAMESPACES = ("torch", "keras", "haiku", "mup")


def top_level_names(families: tuple[Family, ...] = FAMILIES) -> list[str]:
    """``jinit.__all__``: the top-level names of ``families``, in their order."""
    return [name for family in families for name in family.names if "." not in name]
