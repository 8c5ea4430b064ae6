"""A Sphinx extension: an example (a `>>>` line) outside a fenced code block on a Markdown page
is a warning, so the build (run with `-W`) fails.

Markdown reads `>>>` as three nested block quotes, so an unfenced example still runs as a
doctest but shows on the site as one run-together paragraph.
"""

from __future__ import annotations

import re

# An opening or closing code fence: three or more backticks or tildes, maybe indented.
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")


def unfenced_examples(text: str) -> list[int]:
  """The 1-based numbers of the lines of Markdown `text` that start with `>>>` outside a
  fenced code block.

  >>> unfenced_examples("Text\\n>>> 1 + 1\\n2\\n```python\\n>>> 2 + 2\\n4\\n\\n```\\n")
  [2]
  """
  found, fence = [], None
  for number, line in enumerate(text.splitlines(), start=1):
    match = _FENCE.match(line)
    if fence is None:
      if match:
        fence = match.group(1)
      elif line.lstrip().startswith(">>>"):
        found.append(number)
    elif (match and not match.group(2).strip() and match.group(1)[0] == fence[0]
          and len(match.group(1)) >= len(fence)):
      fence = None
  return found


def _check(app, docname: str, source: list[str]) -> None:
  from sphinx.util import logging

  if not str(app.env.doc2path(docname)).endswith(".md"):
    return
  for number in unfenced_examples(source[0]):
    logging.getLogger(__name__).warning(
        "an example line (>>>) outside a code block shows as run-together text: put the "
        "example in a ```python fence, with a blank line before the closing fence",
        location=(docname, number), type="jaxup", subtype="unfenced-example")


def setup(app):
  app.connect("source-read", _check)
  return {"parallel_read_safe": True, "parallel_write_safe": True}
