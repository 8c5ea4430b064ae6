"""The tour (the README's main command) runs and prints the seed's tables."""

import pathlib
import runpy

TOUR = pathlib.Path(__file__).resolve().parent.parent / "examples" / "tour.py"


def test_tour_prints_every_seed_table(capsys):
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
