"""The README's Python examples run and give the shapes their comments state."""

import pathlib
import re
import subprocess

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run():
  blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
  assert blocks, "the README has no Python example"
  for block in blocks:
    namespace = {}
    exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    for line in block.splitlines():
      shape = re.search(r"^(\w+) = .*# (\([\d, ]+\))", line)
      if shape:
        name, expected = shape.groups()
        assert str(tuple(namespace[name].shape)) == expected, line


def quick_start() -> list[str]:
  block = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.S).group(1)
  return [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines() if line.strip()]


def test_readme_needs_exactly_two_self_contained_commands():
  tomllib = pytest.importorskip("tomllib")

  extras = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"][
      "optional-dependencies"]
  tour, tests = quick_start()
  for command, needs in ((tour, {"examples"}), (tests, {"test", "docs", "examples"})):
    installed = re.match(r'pip install -e "\.\[([\w,]+)\]" && ', command)
    assert installed, f"{command!r} does not start by installing what it needs"
    named = set(installed.group(1).split(","))
    assert needs <= named <= set(extras), (command, named)
  assert tour.endswith("&& python examples/tour.py")
  assert tests.endswith("&& python -m pytest -q -n auto")
  # The docs extra has what the docs build needs, the examples extra what the examples import.
  assert {"sphinx", "myst-parser"} <= {re.split(r"[<>=\[]", d)[0] for d in extras["docs"]}
  assert {"matplotlib", "scikit-image", "optax", "tqdm", "flax", "dm-haiku"} <= {
      re.split(r"[<>=\[]", d)[0] for d in extras["examples"]}


def test_ci_runs_the_readme_test_command():
  """The CI script's own extraction, run on the README, gives the README's test command."""
  script = (README.parent / ".ci" / "run").read_text()
  extract = [line for line in script.splitlines() if line.startswith("command=$(")]
  assert len(extract) == 1, "the CI script does not read its command from the README"
  result = subprocess.run(["bash", "-c", extract[0] + '\nprintf %s "$command"'],
                          cwd=README.parent, capture_output=True, text=True, check=True)
  assert result.stdout.strip() == quick_start()[1]
  assert re.search(r'^eval "\$command"$', script, flags=re.M), "the CI script does not run it"
