"""Sphinx configuration of the pymc_tracers documentation site.

Build it (warnings are errors, as in CI)::

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are MyST markdown; the API reference comes from the numpy-style docstrings (autodoc +
napoleon + autosummary); the notebooks of ``notebooks/`` are copied into ``docs/notebooks/``
(generated, ignored by git) and rendered by myst-nb with their stored outputs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the package, also when it is not installed

import pymc_tracers  # noqa: E402

project = "pymc_tracers"
author = "pymc_tracers developers"
copyright = "2024-2026, pymc_tracers developers"
release = version = pymc_tracers.__version__

extensions = [
    "myst_nb",  # MyST markdown pages and .ipynb notebooks (myst_nb loads myst_parser itself)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",  # numpy-style docstrings
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "README.md"]
templates_path = ["_templates"]
# .rst first: autosummary writes its generated API pages with the first suffix
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# ---------------------------------------------------------------- notebooks (myst-nb)
# The tutorials are the executed notebooks of notebooks/, rendered with their stored outputs.
# They are NOT executed here: each takes minutes of sampling (resolution_limit.ipynb ~7 min on
# 2 cores), far beyond a CI docs step. Re-execute them with `jupyter execute --inplace`.
nb_execution_mode = "off"
nb_merge_streams = True


_RELATIVE_LINK = re.compile(r"\]\(\.\./([^)#\s]+)\)")


def _link(match: re.Match) -> str:
    """A notebook's link to ``../path`` (repository root), as seen from docs/notebooks/."""
    target = match.group(1)
    if target.startswith("docs/"):  # another page of this site
        return f"](../{target[5:]})"
    return f"](path:../../{target})"  # a repository file: a download link


def _copy_notebooks() -> None:
    """Mirror notebooks/*.ipynb into docs/notebooks/ (Sphinx reads sources under docs/ only).

    Links from a notebook to repository files (``../scripts/x.py``) are rewritten so that they
    resolve from the copy's folder.
    """
    target = DOCS / "notebooks"
    target.mkdir(exist_ok=True)
    wanted = {p.name: p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    for stale in target.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, source in wanted.items():
        notebook = json.loads(source.read_text(encoding="utf-8"))
        for cell in notebook.get("cells", []):
            if cell.get("cell_type") == "markdown":
                text = "".join(cell["source"])
                cell["source"] = _RELATIVE_LINK.sub(_link, text)
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        copy = target / name
        if not copy.exists() or copy.read_text(encoding="utf-8") != text:
            copy.write_text(text, encoding="utf-8")


_copy_notebooks()

# ---------------------------------------------------------------- MyST
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # [text](page.md#a-heading) links to headings

# ---------------------------------------------------------------- API reference
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"  # hints into the parameter lists, not long signatures
autodoc_class_signature = "mixed"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
# Type names in docstrings ("ndarray", "tensor", "PyMC variable") are prose, not targets.
nitpicky = False

# ---------------------------------------------------------------- optional pages
#: Pages listed in index.md that other parts of the project write; while one does not exist
#: yet it is left out of the toctree (instead of failing the -W build).
OPTIONAL_PAGES = ("survey",)


def _drop_missing_optional_pages(app, docname, source) -> None:
    if docname != "index":
        return
    for page in OPTIONAL_PAGES:
        if not (DOCS / f"{page}.md").exists():
            source[0] = source[0].replace(f"\n{page}\n", "\n")


def setup(app):
    app.connect("source-read", _drop_missing_optional_pages)


# ---------------------------------------------------------------- HTML
html_theme = "furo"
html_title = f"pymc_tracers {release}"
html_static_path = []
