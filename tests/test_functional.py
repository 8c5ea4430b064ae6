"""jaxup.functional against torch.nn.functional: same arguments, same numbers."""

import numpy as np
import pytest

import jaxup.functional as F
from tests.helpers import random

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _t(x):
  return torch.from_numpy(np.array(x))


def _close(got, expected, tol=1e-12):
  np.testing.assert_allclose(np.asarray(got), expected.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_conv_and_conv_transpose_match_torch(n):
  spatial = (5, 4, 3)[:n]
  x = random((2, 4, *spatial))
  w = random((6, 2, *(3, 2, 2)[:n]), seed=1)
  b = random((6,), seed=2)
  kw = dict(stride=2, padding=1, dilation=1, groups=2)
  conv = getattr(F, f"conv{n}d")
  _close(conv(x, w, b, **kw), getattr(TF, f"conv{n}d")(_t(x), _t(w), _t(b), **kw))
  _close(conv(x, w, None, 1, "same", 2, 2),
         getattr(TF, f"conv{n}d")(_t(x), _t(w), None, 1, "same", 2, 2))
  # Unbatched [C, *S], as PyTorch allows.
  _close(conv(x[0], w, b, padding="valid", groups=2),
         getattr(TF, f"conv{n}d")(_t(x[0]), _t(w), _t(b), padding="valid", groups=2))

  wt = random((4, 3, *(3, 2, 4)[:n]), seed=3)
  bt = random((6,), seed=4)
  args = (2, 1, 1, 2, 2)  # stride, padding, output_padding, groups, dilation: PyTorch's order
  _close(getattr(F, f"conv_transpose{n}d")(x, wt, bt, *args),
         getattr(TF, f"conv_transpose{n}d")(_t(x), _t(wt), _t(bt), *args))


INTERPOLATE_CASES = [
    # (input spatial shape, kwargs)
    ((5,), dict(scale_factor=2)),  # nearest default
    ((5,), dict(size=7, mode="nearest-exact")),
    ((5,), dict(size=8, mode="linear")),
    ((4, 5), dict(scale_factor=1.7, mode="nearest")),
    ((4, 5), dict(size=(7, 3), mode="bilinear", align_corners=True)),
    ((4, 5), dict(scale_factor=2.5, mode="bilinear", recompute_scale_factor=True)),
    ((6, 7), dict(size=(3, 4), mode="bilinear", antialias=True)),
    ((6, 7), dict(size=(9, 4), mode="bicubic", antialias=True)),
    ((4, 5), dict(size=(7, 9), mode="bicubic")),
    ((3, 4, 2), dict(scale_factor=2, mode="trilinear")),
    ((3, 4, 2), dict(size=(5, 3, 4), mode="trilinear", align_corners=True)),
    ((7, 5), dict(size=(3, 2), mode="area")),
]


@pytest.mark.parametrize("spatial,kwargs", INTERPOLATE_CASES)
def test_interpolate_matches_torch(spatial, kwargs):
  x = random((2, 3, *spatial))
  _close(F.interpolate(x, **kwargs), TF.interpolate(_t(x), **kwargs))


def test_interpolate_errors():
  x = random((1, 1, 4, 4))
  with pytest.raises(ValueError, match=r"mode='trilinear' needs a 5-D input as in PyTorch"):
    F.interpolate(x, size=2, mode="trilinear")
  with pytest.raises(ValueError, match=r"align_corners applies to linear and cubic modes"):
    F.interpolate(x, size=2, align_corners=False)
  with pytest.raises(ValueError, match=r"give exactly one of size and scale_factor"):
    F.interpolate(x)
  with pytest.raises(TypeError, match=r"input must be a JAX or NumPy array, got a torch.Tensor"):
    F.interpolate(_t(x), size=2)
  with pytest.raises(TypeError, match=r"weight must be a JAX or NumPy array, .*jnp.asarray"):
    F.conv2d(x, torch.ones(1, 1, 3, 3))
  with pytest.raises(TypeError, match=r"call max_pool2d\(\.\.\., return_indices=True\)"):
    F.max_unpool2d(x, None, 2)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_pool_and_unpool_match_torch(n):
  x = random((2, 3, *(7, 6, 5)[:n]))
  kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
  values, indices = getattr(F, f"max_pool{n}d")(x, **kw, return_indices=True)
  tv, ti = getattr(TF, f"max_pool{n}d")(_t(x), **kw, return_indices=True)
  _close(values, tv)
  np.testing.assert_array_equal(np.asarray(indices), ti.numpy())
  _close(getattr(F, f"max_pool{n}d")(x, 2), getattr(TF, f"max_pool{n}d")(_t(x), 2))
  size = x.shape[2:]
  _close(getattr(F, f"max_unpool{n}d")(values, indices, 3, 2, 1, size),
         getattr(TF, f"max_unpool{n}d")(tv, ti, 3, 2, 1, size))


def test_pixel_shuffle_matches_torch():
  x = random((2, 3, 8, 2, 3))  # extra leading axis, as PyTorch allows
  _close(F.pixel_shuffle(x, 2), TF.pixel_shuffle(_t(x), 2))
  y = random((3, 2, 4, 6))
  _close(F.pixel_unshuffle(y, 2), TF.pixel_unshuffle(_t(y), 2))
