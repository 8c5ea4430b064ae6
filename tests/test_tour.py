"""The tour (the README's first command) prints the worked examples and writes its figure; the
figure's claims hold; the docs' copy of the figure is there and small."""

import pathlib
import runpy
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOUR = ROOT / "examples" / "tour.py"


@pytest.mark.examples
def test_tour_prints_every_worked_example_and_writes_the_figure(capsys, monkeypatch, tmp_path):
  pytest.importorskip("matplotlib")
  pytest.importorskip("skimage")
  out_path = tmp_path / "figures" / "tour.png"
  monkeypatch.setattr(sys, "argv", [str(TOUR), "--out", str(out_path)])
  monkeypatch.syspath_prepend(str(ROOT / "examples"))
  runpy.run_path(str(TOUR), run_name="__main__")
  out = capsys.readouterr().out
  for table in (
      "[[ 5., 15., 10.],\n     [20., 50., 30.],\n     [15., 35., 20.]]",  # transposed conv
      "[[1, 1, 2, 2],\n     [1, 1, 2, 2],\n     [3, 3, 4, 4],\n     [3, 3, 4, 4]]",  # nearest
      "[[10, 12, 17, 20],\n     [15, 17, 22, 25],\n     [25, 27, 32, 35],\n     [30, 32, 37, 40]]",
      "[[1, 0, 2, 0],\n     [0, 0, 0, 0],\n     [3, 0, 4, 0],\n     [0, 0, 0, 0]]",  # nails
      "[[0, 0, 2, 0],\n     [0, 1, 0, 0],\n     [0, 3, 0, 0],\n     [0, 0, 4, 0]]",  # unpool
  ):
    assert table in out, table
  assert "pixel_unshuffle(pixel_shuffle(x)) == x: True" in out
  assert f"figure: {out_path.resolve()}" in out
  import matplotlib.image

  image = matplotlib.image.imread(out_path)
  assert image.shape[0] > 500 and image.shape[1] > 800, image.shape
  assert image[..., :3].std() > 0.1  # not a blank canvas


def test_checkerboards_appear_where_the_figure_says():
  sys.path.insert(0, str(ROOT / "examples"))
  try:
    import figures
  finally:
    sys.path.remove(str(ROOT / "examples"))
  boards = dict(figures.checkerboards())
  flat = {name.replace("\n", " "): bool(np.ptp(image) < 1e-6 * np.abs(image).max())
          for name, image in boards.items()}
  assert flat == {
      "conv_transpose 3x3, stride 2 all-ones kernel": False,
      "conv_transpose 4x4, stride 2 all-ones kernel": True,
      "nearest 2x, then conv 3x3 all-ones kernel": True,
      "conv_transpose 3x3, stride 2 random kernel": False,
      "conv_transpose 4x4, stride 2 random kernel": False,
      "nearest 2x, then conv 3x3 random kernel": True,
  }


def test_readme_figure_is_committed_and_small():
  readme = (ROOT / "README.md").read_text()
  assert "docs/_static/tour.png" in readme
  figure = ROOT / "docs" / "_static" / "tour.png"
  assert figure.is_file() and figure.stat().st_size < 1_500_000
