"""Sphinx configuration of the sa-signals documentation.

Built in CI with ``sphinx-build -W --keep-going -n docs docs/_build/html``: every
warning fails the build, and every cross-reference must resolve. Nothing is
fetched at build time (no intersphinx inventories, no CDN, no remote images), so
the site builds offline and works opened from disk.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import sa_signals

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

# Furo's syntax colours (accessible-pygments) call logging.basicConfig() when
# imported, which would print every library's INFO records (Alembic's among
# them) into the build's output. A handler on the root logger first makes that
# call do nothing; Sphinx's own messages have their own handlers.
logging.getLogger().addHandler(logging.NullHandler())

project = "sa-signals"
author = "The sa-signals developers"
copyright = "2026, the sa-signals developers"
release = sa_signals.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.graphviz",
    "public_names",  # docs/_ext: a private module's name resolves to its public re-export
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # [the heading](#the-heading) links, as on GitHub

# Every cross-reference resolves. The only exceptions are names of other
# projects: their inventories would have to be fetched, so they render as text.
nitpicky = True
nitpick_ignore_regex = [
    ("py:.*", r"(sqlalchemy|blinker|celery|kombu|alembic|flask|argon2)(\..*)?"),
    ("py:.*", r"(collections\.abc|contextlib|typing|typing_extensions|types|enum|weakref)\..*"),
    ("py:.*", r"(datetime|decimal|uuid|logging|asyncio|concurrent\.futures)\..*"),
    # argon2-cffi's and OpenTelemetry's classes, imported for type checking only
    # (OpenTelemetry is an optional extra), so autodoc sees their bare names.
    ("py:class", "PasswordHasher"),
    ("py:class", "TracerProvider"),
    # Muting's constructor argument: users get a Muting from mute(), never build one.
    ("py:class", "sa_signals._muting.MuteRule"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Our API's own docstrings only: a method SQLAlchemy documents (UTCDateTime's
# TypeDecorator hooks) is SQLAlchemy's to document.
autodoc_inherit_docstrings = False
autodoc_default_options = {"members": True, "imported-members": True}

graphviz_output_format = "svg"  # diagrams are drawn from text at build time

html_theme = "furo"
html_title = f"sa-signals {release}"
html_static_path = ["_static"]
html_css_files = ["diagrams.css"]
