"""Sphinx configuration: the pages are Markdown (MyST); the API reference comes from the docstrings.

The configuration reference's table of keys is made at build time from
``component.config.KEYS`` by the ``configuration-keys`` directive below, so the
page cannot list a key the reader does not read, or a default it does not use.
"""

import sys
from pathlib import Path

from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's component package, installed or not

from component import __version__
from component.config import reference

project = "iqresponder"
author = "the iqresponder authors"
copyright = "the iqresponder authors"
release = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinxcontrib.zopeext.autointerface"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "examples"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = "iqresponder"


def keys_table() -> str:
    """The table of keys, in Markdown, as the configuration reference shows it."""
    return reference()


class ConfigurationKeys(SphinxDirective):
    """``configuration-keys``: the table of every configuration key, made from ``component.config.KEYS``."""

    def run(self):
        return self.parse_text_to_nodes(keys_table())


def setup(app):
    app.add_directive("configuration-keys", ConfigurationKeys)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
