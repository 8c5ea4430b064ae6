"""uint8 interpolation: jaxup.functional.interpolate follows PyTorch's fixed-point kernel
exactly; jaxup.resize keeps its documented rule (float, then truncation toward zero)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxup
import jaxup.functional as F
from jaxup._src.resize_methods import torch_uint8_taps


def test_issue_example_rounds_as_pytorch():
  x = np.array([[[[10, 20], [31, 40]]]], np.uint8)
  got = F.interpolate(x, size=(3, 3), mode="bilinear")
  assert got.dtype == jnp.uint8
  assert np.asarray(got).ravel().tolist() == [10, 15, 20, 21, 26, 30, 31, 36, 40]
  # jaxup.resize truncates the float result (20.5 -> 20, 25.5 -> 25, 35.5 -> 35).
  assert np.asarray(jaxup.resize(x, (3, 3), method="linear", layout="NCHW")).ravel().tolist() == [
      10, 15, 20, 20, 25, 30, 31, 35, 40]


def test_fixed_point_weights_by_hand():
  # 2 -> 3 bilinear: x = -1/6 (clamped to 0), 1/2, 7/6: weights (1, 0), (1/2, 1/2), (0, 1).
  # The largest weight 1 gives precision 14 (2**15 would overflow int16): 16384 and 8192.
  taps, weights, precision = torch_uint8_taps(2, 3, None, False, False, False)
  assert precision == 14
  assert taps.tolist() == [[0, 1], [0, 1], [1, 1]]
  assert weights.tolist() == [[16384, 0], [8192, 8192], [16384, 0]]
  # (2**13 + 8192 * (20 + 21)) >> 14 = 21: 20.5 rounds half up.
  assert ((1 << 13) + 8192 * (20 + 21)) >> 14 == 21


def test_cubic_overshoot_saturates_per_pass():
  x = np.zeros((1, 1, 4, 4), np.uint8)
  x[..., ::2] = 255
  got = np.asarray(F.interpolate(x, size=(4, 9), mode="bicubic"))
  exact = np.asarray(F.interpolate(x.astype(np.float64), size=(4, 9), mode="bicubic"))
  assert exact.min() < 0 and exact.max() > 255
  np.testing.assert_array_equal(got, np.clip(np.floor(exact + 0.5), 0, 255))


def _pytorch_generic_path_bug(channels, out_size):
  """PyTorch's generic uint8 path (more than 4 channels, no AVX2 kernel) returns each
  channel's first column for every row when the output is one column wide; its AVX2 path
  (up to 4 channels) and its float path interpolate that column. jaxup gives the latter."""
  return channels > 4 and out_size[1] == 1


def _cases():
  rng = np.random.default_rng(0)
  cases = []
  sizes = [(5, 7), (8, 8), (3, 11), (16, 9), (1, 6)]
  outs = [(9, 13), (3, 4), (11, 2), (7, 7), (1, 5), (24, 3)]
  for mode, align, antialias in itertools.product(("bilinear", "bicubic"), (False, True),
                                                  (False, True)):
    for ins, out in zip(sizes * 2, outs + outs[::-1]):
      channels = int(rng.choice([1, 3, 4, 6]))
      cases.append((mode, align, antialias, ins, dict(size=out), channels))
    for ins, scale in (((6, 5), (1.7, 0.45)), ((9, 4), (0.34, 2.5))):
      cases.append((mode, align, antialias, ins, dict(scale_factor=scale), 3))
  for mode in ("nearest", "nearest-exact"):
    for ins, out in zip(sizes, outs):
      cases.append((mode, None, False, ins, dict(size=out), 3))
    cases.append((mode, None, False, (7, 5), dict(scale_factor=(1.5, 0.6)), 2))
  return cases


@pytest.mark.parametrize("mode, align, antialias, ins, kwargs, channels", _cases())
def test_matches_torch_exactly(mode, align, antialias, ins, kwargs, channels):
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(sum(ins) + channels)
  x = rng.integers(0, 256, (2, channels) + ins).astype(np.uint8)
  expected = torch.nn.functional.interpolate(torch.from_numpy(x), mode=mode, align_corners=align,
                                             antialias=antialias, **kwargs).numpy()
  if _pytorch_generic_path_bug(channels, expected.shape[2:]):
    pytest.skip("PyTorch's generic uint8 path with a one-column output (see helper)")
  got = F.interpolate(x, mode=mode, align_corners=align, antialias=antialias, **kwargs)
  assert got.dtype == jnp.uint8
  np.testing.assert_array_equal(np.asarray(got), expected)


def test_one_column_output_interpolates_the_column():
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(3)
  x = rng.integers(0, 256, (1, 6, 4, 9)).astype(np.uint8)
  got = np.asarray(F.interpolate(x, size=(13, 1), mode="bilinear"))
  # PyTorch's AVX2 path, channel by channel, is the reference here.
  per_channel = np.concatenate([torch.nn.functional.interpolate(
      torch.from_numpy(x[:, c:c + 1]), size=(13, 1), mode="bilinear").numpy()
      for c in range(6)], axis=1)
  np.testing.assert_array_equal(got, per_channel)


def test_jit_and_vmap():
  x = np.random.default_rng(1).integers(0, 256, (3, 2, 6, 7)).astype(np.uint8)
  f = lambda v: F.interpolate(v, size=(9, 4), mode="bicubic", antialias=True)
  eager = np.asarray(f(x))
  np.testing.assert_array_equal(np.asarray(jax.jit(f)(x)), eager)
  # Unbatched [C, H, W] inputs under vmap give the batched result.
  g = lambda v: F.interpolate(v[None], size=(9, 4), mode="bicubic", antialias=True)[0]
  np.testing.assert_array_equal(np.asarray(jax.vmap(g)(x)), eager)


def test_wide_antialias_filter_loops():
  torch = pytest.importorskip("torch")
  x = np.random.default_rng(2).integers(0, 256, (1, 3, 130, 7)).astype(np.uint8)
  expected = torch.nn.functional.interpolate(torch.from_numpy(x), size=(3, 7), mode="bilinear",
                                             antialias=True).numpy()
  np.testing.assert_array_equal(np.asarray(F.interpolate(x, size=(3, 7), mode="bilinear",
                                                         antialias=True)), expected)


@pytest.mark.parametrize("dtype, size, mode", [
    (np.uint8, 5, "linear"), (np.uint8, (5, 5, 5), "trilinear"), (np.uint8, (2, 2), "area"),
    (np.int32, (5, 5), "bilinear"), (np.int8, (5, 5), "bicubic")])
def test_integer_inputs_pytorch_refuses_are_refused(dtype, size, mode):
  rank = 1 if isinstance(size, int) else len(size)
  x = np.zeros((1, 1) + (4,) * rank, dtype)
  with pytest.raises(TypeError, match=r"PyTorch interpolates integer inputs only as uint8 .*"
                     r"cast the input to a floating dtype, or call jaxup.resize"):
    F.interpolate(x, size=size, mode=mode)


def test_nearest_moves_any_integer():
  x = np.array([[[2**30, -(2**30) + 1]]], np.int32)
  got = F.interpolate(x, size=4)
  assert got.dtype == jnp.int32
  assert got.tolist() == [[[2**30, 2**30, -(2**30) + 1, -(2**30) + 1]]]
