"""Importing a framework module of jaxup without the framework names the install to run."""

import subprocess
import sys

import pytest

CASES = [("flax", "flax", "flax"), ("nnx", "flax", "flax"), ("haiku", "haiku", "haiku"),
         ("equinox", "equinox", "equinox")]


@pytest.mark.parametrize("module,missing,extra", CASES)
def test_missing_framework_names_the_extra(module, missing, extra):
  # The framework is made unimportable in a fresh interpreter (None in sys.modules).
  code = (f"import sys; sys.modules[{missing!r}] = None\n"
          "try:\n"
          f"  import jaxup.{module}\n"
          "except ImportError as e:\n"
          "  print(type(e).__name__, e)\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True).stdout
  assert out.startswith(f"ImportError jaxup.{module} needs {missing}, which is not installed: "
                        f'pip install "jaxup[{extra}]".'), out
  if module == "haiku":
    assert "Haiku's package is dm-haiku" in out and "haiku is unrelated" in out
