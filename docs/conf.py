"""Sphinx configuration: MyST Markdown pages, an API reference from the docstrings (Google
style, through napoleon), the furo theme. Built with warnings as errors by tests/test_docs.py:

  sphinx-build -W -b html docs docs/_build/html
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

project = "jaxup"
author = "the jaxup authors"
copyright = "the jaxup authors"  # noqa: A001 - Sphinx's name

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    # An example (`>>>`) outside a code fence on a page is a warning, so an error here.
    "fenced_examples",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Attributes sections become fields of the class, not a second description of each attribute.
napoleon_use_ivar = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}
# Type hints name jax, numpy and framework types that this site does not document.
nitpicky = False

try:
  import furo  # noqa: F401

  html_theme = "furo"
except ImportError:  # the docs extra installs furo; alabaster ships with Sphinx
  html_theme = "alabaster"
html_title = "jaxup"
html_static_path = ["_static"]
