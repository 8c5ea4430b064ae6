"""The README's Python examples run and give the shapes their comments state."""

import pathlib
import re

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
