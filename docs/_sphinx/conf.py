"""Sphinx configuration of the documentation site (docs/*.md).

Strategy: the pages are Markdown read by MyST (GitHub shows the same files); the
library reference is autodoc over the installed package, whose docstrings use reST
roles (:func:, ``code``). This file lives in docs/_sphinx/, not docs/, because docs/
is installed as the package qjournal.docs, which ships format.md alone. Build from the
repository's root: ``sphinx-build -W --keep-going -c docs/_sphinx docs build/docs``.
"""

from __future__ import annotations

import importlib.metadata

project = "qjournal"
author = "the qjournal authors"
copyright = "the qjournal authors"
release = importlib.metadata.version("qjournal")

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_sphinx", "_build"]

# GitHub's anchors for headings, so that the links between pages (format.md#d5-clusters)
# work on GitHub and in the built site alike.
myst_heading_anchors = 4

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "alabaster"
html_title = f"qjournal {release}"
html_show_sourcelink = False
