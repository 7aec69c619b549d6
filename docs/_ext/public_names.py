"""Resolve a name from a module of the implementation to its public re-export.

The API reference documents each object where users import it
(``sa_signals.Signal``), but type hints name the module that defines it
(``sa_signals.dispatch.Signal``). A reference to the private name would not
resolve; this points it at the public one, and only when both names are the
same object, so a name that is not public still fails the nitpicky build.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, TypeVar

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

PUBLIC_MODULES = (
    "sa_signals",
    "sa_signals.auth",
    "sa_signals.celery",
    "sa_signals.migrations",
    "sa_signals.testing",
    "sa_signals.tracing",
    "sa_signals.types",
)


def public_name(target: str) -> str | None:
    """The public name of the object ``target`` names, if it has one."""
    module_name, _, name = target.rpartition(".")
    defined = getattr(sys.modules.get(module_name), name, None)
    if defined is None:
        return None
    for public_module_name in PUBLIC_MODULES:
        public = importlib.import_module(public_module_name)
        if name in public.__all__ and getattr(public, name) is defined:
            return f"{public_module_name}.{name}"
    return None


def is_type_variable(target: str) -> bool:
    module_name, _, name = target.rpartition(".")
    return isinstance(getattr(sys.modules.get(module_name), name, None), TypeVar)


def resolve_to_public_name(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.TextElement
) -> nodes.Element | None:
    if node.get("refdomain") != "py":
        return None
    if is_type_variable(node["reftarget"]):
        return contnode  # a signature's type variable (F, T) is text, not a page
    target = public_name(node["reftarget"])
    if target is None or target == node["reftarget"]:
        return None
    return env.get_domain("py").resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
    )


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", resolve_to_public_name)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
