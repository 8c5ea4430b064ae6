"""An example (a `>>>` line) outside a fenced code block on a documentation page fails the docs
build: Markdown shows it as nested block quotes, one run-together paragraph."""

import pathlib
import runpy
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
try:
  from fenced_examples import unfenced_examples
finally:
  sys.path.remove(str(DOCS / "_ext"))

FENCED = """\
Text.

```python
>>> 1 + 1
2

```
"""


@pytest.mark.parametrize("text, lines", [
    (FENCED, []),
    ("Text.\n\n>>> 1 + 1\n2\n", [3]),
    ("  >>> 1 + 1\n2\n", [1]),  # indented, still not a code block in a list item
    (FENCED + "\n>>> x = 1\n", [9]),  # after a closed fence
    ("~~~\n>>> 1\n~~~\n>>> 2\n", [4]),  # tilde fences
    ("- item\n\n  ```python\n  >>> 1\n  1\n\n  ```\n", []),  # an indented fence in a list
    # A four-backtick fence is closed only by four or more: the inner ``` lines are content.
    ("````markdown\n```python\n>>> 1\n```\n````\n>>> 2\n", [6]),
    # "```python" cannot close a fence: a closing fence has no info string.
    ("```\n>>> 1\n```python\n>>> 2\n```\n>>> 3\n", [6]),
    (":::{note}\n>>> 1\n:::\n", [2]),  # a colon fence holds Markdown, not code
])
def test_unfenced_examples_finds_exactly_the_lines_outside_code_fences(text, lines):
  assert unfenced_examples(text) == lines


def test_no_page_has_an_unfenced_example():
  pages = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)
  assert pages
  found = {p.relative_to(ROOT).as_posix(): unfenced_examples(p.read_text()) for p in pages}
  assert not {page: lines for page, lines in found.items() if lines}


def build(tmp_path, page: str) -> subprocess.CompletedProcess:
  """Builds a one-page site with the docs' extension and warnings as errors."""
  source = tmp_path / "source"
  source.mkdir()
  (source / "conf.py").write_text(textwrap.dedent(f"""\
      import sys
      sys.path.insert(0, {str(DOCS / "_ext")!r})
      extensions = ["myst_parser", "fenced_examples"]
      """))
  (source / "index.md").write_text(page)
  return subprocess.run(
      [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
       str(source), str(tmp_path / "html")], capture_output=True, text=True, timeout=300)


def test_docs_build_fails_on_an_unfenced_example_and_names_its_line(tmp_path):
  pytest.importorskip("sphinx")
  pytest.importorskip("myst_parser")
  result = build(tmp_path, "# Page\n\nAn example:\n\n>>> 1 + 1\n2\n")
  assert result.returncode != 0
  assert "index.md:5" in result.stderr and "outside a code block" in result.stderr, result.stderr


def test_docs_build_passes_a_fenced_example(tmp_path):
  pytest.importorskip("sphinx")
  pytest.importorskip("myst_parser")
  result = build(tmp_path, "# Page\n\n" + FENCED)
  assert result.returncode == 0, result.stdout + result.stderr


def test_the_docs_configuration_loads_the_extension():
  saved = list(sys.path)
  try:
    conf = runpy.run_path(str(DOCS / "conf.py"))
  finally:
    sys.path[:] = saved
  assert "fenced_examples" in conf["extensions"]
