"""The tree engine: rules to per-leaf plans to one compiled program. A map in README.md.

The rest of jinit uses the engine through the names below (``from jinit import _tree``).
"""

from jinit._tree.api import compiled_builder as compiled_builder
from jinit._tree.api import init_tree as init_tree
from jinit._tree.api import initialize as initialize
from jinit._tree.api import run as run
from jinit._tree.plan import plan as plan
from jinit._tree.rules import Rules as Rules
from jinit._tree.sharding import ambient_mesh as ambient_mesh
from jinit._tree.sharding import check_mesh as check_mesh
from jinit._tree.sharding import resolve_leaf_sharding as resolve_leaf_sharding
