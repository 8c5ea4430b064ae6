"""The wheel and the sdist hold what users need and nothing else: the license, the typing
marker, every module of the package, and no tests, benchmarks, examples or docs in the wheel.

Builds both (sdist first, the wheel from the sdist, as `python -m build` does) without network
access, into a temporary folder, from a copy of the source tree.
"""

import email.parser
import pathlib
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

import jaxup

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Never copied: local build outputs and environments.
IGNORED = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__",
                                 "_build", ".pytest_cache", ".hypothesis", "*.png")


def modules() -> list[str]:
  """Every module of the package, as a path relative to the source root."""
  return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "jaxup").rglob("*.py")
                if "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path]:
  pytest.importorskip("build")
  pytest.importorskip("setuptools")
  tmp = tmp_path_factory.mktemp("dist")
  source = tmp / "source"
  shutil.copytree(ROOT, source, ignore=IGNORED)
  result = subprocess.run(
      [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp / "out"),
       str(source)], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
  (wheel,) = (tmp / "out").glob("*.whl")
  (sdist,) = (tmp / "out").glob("*.tar.gz")
  return wheel, sdist


def test_wheel_holds_the_package_license_and_typing_marker(built):
  wheel, _ = built
  names = set(zipfile.ZipFile(wheel).namelist())
  missing = sorted(set(modules()) - names)
  assert not missing, f"the wheel lacks {missing}"
  assert "jaxup/py.typed" in names
  info = f"jaxup-{jaxup.__version__}.dist-info"
  assert f"{info}/licenses/LICENSE" in names, sorted(n for n in names if "dist-info" in n)
  stray = sorted(n for n in names if not n.startswith(("jaxup/", f"{info}/")))
  assert not stray, f"the wheel holds files outside the package: {stray}"


def test_wheel_metadata_names_the_spdx_license_and_the_one_version(built):
  wheel, _ = built
  archive = zipfile.ZipFile(wheel)
  metadata = email.parser.Parser().parsestr(
      archive.read(f"jaxup-{jaxup.__version__}.dist-info/METADATA").decode())
  assert metadata["Version"] == jaxup.__version__
  assert metadata["License-Expression"] == "Apache-2.0"
  assert not [c for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")]
  assert wheel.name == f"jaxup-{jaxup.__version__}-py3-none-any.whl"


def test_sdist_holds_the_sources_and_the_license(built):
  _, sdist = built
  prefix = f"jaxup-{jaxup.__version__}/"
  with tarfile.open(sdist) as archive:
    names = {n.removeprefix(prefix) for n in archive.getnames()}
  expected = {"LICENSE", "README.md", "pyproject.toml", "jaxup/py.typed", *modules()}
  missing = sorted(expected - names)
  assert not missing, f"the sdist lacks {missing}"
  assert not [n for n in names if n.startswith(("benchmarks/", "docs/", "examples/"))]


def test_pre_commit_runs_the_ruff_version_the_project_is_checked_with():
  metadata = pytest.importorskip("importlib.metadata")
  try:
    installed = metadata.version("ruff")
  except metadata.PackageNotFoundError:
    pytest.skip("ruff is not installed")
  config = (ROOT / ".pre-commit-config.yaml").read_text()
  assert f"rev: v{installed}\n" in config, (
      f"ruff {installed} is installed: set the ruff-pre-commit hook's rev to v{installed}")
