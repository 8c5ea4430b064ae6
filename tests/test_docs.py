"""The documentation site builds with warnings as errors, and its API reference lists every
public name. (The `>>>` examples on the pages run as doctests through pytest's
`--doctest-glob='*.md'` over docs/.)"""

import pathlib
import pkgutil
import re
import subprocess
import sys

import pytest

import jaxup

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def documented(pattern: str) -> set[str]:
  return set(re.findall(pattern, (DOCS / "api.md").read_text(), flags=re.M))


def test_api_reference_lists_every_public_name():
  listed = documented(r"^\.\. auto(?:function|class|data):: jaxup\.(\w+)\s*$")
  missing = sorted(set(jaxup.__all__) - listed)
  assert not missing, (
      f"docs/api.md does not document {missing}: add one line per name, e.g. "
      f"'.. autofunction:: jaxup.{missing[0]}'")
  unknown = sorted(listed - set(jaxup.__all__))
  assert not unknown, f"docs/api.md documents {unknown}, which are not in jaxup.__all__"


def test_api_reference_lists_every_public_module():
  modules = {f"jaxup.{m.name}" for m in pkgutil.iter_modules(jaxup.__path__)
             if not m.name.startswith("_")}
  missing = sorted(modules - documented(r"^\.\. automodule:: (jaxup\.\w+)\s*$"))
  assert not missing, (
      f"docs/api.md does not document the modules {missing}: add one line per module, e.g. "
      f"'.. automodule:: {missing[0]}'")


def test_every_page_is_reachable_and_has_no_broken_figure():
  pages = sorted(p.relative_to(DOCS) for p in DOCS.rglob("*.md") if "_build" not in p.parts)
  index = (DOCS / "index.md").read_text()
  for page in pages:
    text = page.as_posix()
    in_glob = text.startswith(("techniques/", "guides/"))
    assert in_glob or text == "index.md" or re.search(rf"^{page.stem}$", index, flags=re.M), (
        f"docs/{text} is in no toctree of docs/index.md")
    for image in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", (DOCS / page).read_text()):
      assert (DOCS / page).parent.joinpath(image).resolve().is_file(), f"{text}: no {image}"


@pytest.mark.docs
def test_site_builds_with_warnings_as_errors(tmp_path):
  pytest.importorskip("sphinx")
  pytest.importorskip("myst_parser")
  result = subprocess.run(
      [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
       "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
      capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout + result.stderr
  assert (tmp_path / "html" / "api.html").is_file()
