"""Regenerates the figures of the documentation site from jaxup itself:

  python docs/make_figures.py

writes docs/_static/tour.png (the tour's figure, which the README shows too) and one
docs/_static/figures/<technique>.png per technique page. Needs the examples extra
(matplotlib, scikit-image).
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]


def main() -> None:
  from figures import save_technique_figures, save_tour_figure

  static = ROOT / "docs" / "_static"
  for path in [save_tour_figure(static / "tour.png"), *save_technique_figures(static / "figures")]:
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
  main()
