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


@pytest.mark.parametrize("fn,shape", [(F.pixel_shuffle, (1, 0, 1, 1)),
                                      (F.pixel_shuffle, (0, 4, 1, 1)),
                                      (F.pixel_unshuffle, (1, 0, 1, 1)),
                                      (F.pixel_unshuffle, (1, 1, 0, 1)),
                                      (F.pixel_unshuffle, (2, 0, 3, 1, 1))])
def test_pixel_shuffle_of_empty_inputs_is_empty_as_in_torch(fn, shape):
  expected = getattr(TF, fn.__name__)(torch.zeros(shape), 1)
  assert fn(np.zeros(shape), 1).shape == tuple(expected.shape)


def test_pixel_shuffle_of_empty_inputs_at_factor_2_follows_the_shape_rule():
  # PyTorch returns an empty input's shape unchanged here ((1, 1, 0, 2) unshuffles to
  # (1, 1, 0, 2)); the rule [*, C r^2, H, W] <-> [*, C, H r, W r] holds for every other size.
  assert F.pixel_shuffle(np.zeros((1, 4, 0, 1)), 2).shape == (1, 1, 0, 2)
  assert F.pixel_shuffle(np.zeros((0, 3, 8, 1, 1)), 2).shape == (0, 3, 2, 2, 2)
  assert F.pixel_unshuffle(np.zeros((1, 1, 0, 2)), 2).shape == (1, 4, 0, 1)
  assert F.pixel_unshuffle(np.zeros((1, 0, 2, 2)), 2).shape == (1, 0, 1, 1)


# Calls PyTorch refuses, which jaxup.functional must refuse too (the same exception type where
# PyTorch's is a Python one), naming PyTorch's argument.
REFUSED = [
    ("conv1d", ((1, 2, 8), (3, 2, 3)), dict(stride=2, padding="same"), ValueError,
     r"padding='same' needs stride=1.*got stride=2"),
    ("conv2d", ((1, 2, 8, 8), (3, 2, 3, 3)), dict(stride=2, padding="same"), ValueError,
     r"padding='same' needs stride=1"),
    ("conv3d", ((1, 2, 4, 4, 4), (3, 2, 1, 1, 1)), dict(stride=(1, 2, 1), padding="same"),
     ValueError, r"padding='same' needs stride=1"),
    ("conv_transpose1d", ((1, 2, 5), (2, 3, 3)), dict(padding="same"), TypeError,
     r"padding must be an int or a tuple of 1 ints for conv_transpose1d.*got 'same'"),
    ("conv_transpose2d", ((1, 2, 5, 5), (2, 3, 3, 3)), dict(padding="valid"), TypeError,
     r"padding must be an int or a tuple of 2 ints"),
    ("conv_transpose3d", ((1, 2, 2, 2, 2), (2, 3, 1, 1, 1)), dict(padding="same"), TypeError,
     r"padding must be an int or a tuple of 3 ints"),
    ("max_pool1d", ((1, 2, 9),), dict(kernel_size=1, stride=0), ValueError,
     r"stride must be a positive int, got 0"),
    ("max_pool1d", ((1, 2, 9),), dict(kernel_size=3, stride=1, padding=3, dilation=2),
     ValueError, r"padding must be at most half of kernel_size.*padding=3 and kernel_size=3"),
    ("max_pool2d", ((1, 2, 9, 9),), dict(kernel_size=3, padding=(2, 1)), ValueError,
     r"padding must be at most half of kernel_size"),
    ("max_pool1d", ((0, 10),), dict(kernel_size=1), ValueError,
     r"input must have non-empty channel and spatial axes for max_pool1d.*\(0, 10\)"),
    ("max_pool3d", ((0, 1, 2, 10),), dict(kernel_size=1), ValueError,
     r"input must have non-empty channel and spatial axes for max_pool3d"),
    ("max_pool2d", ((1, 0, 4, 4),), dict(kernel_size=2), ValueError,
     r"input must have non-empty channel and spatial axes"),
    ("max_pool1d", ((1, 2, 2),), dict(kernel_size=5), ValueError,
     r"kernel_size=5 with dilation=1 spans 5, more than the padded input"),
]


@pytest.mark.parametrize("name,shapes,kwargs,error,message", REFUSED,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSED)])
def test_refuses_what_torch_refuses(name, shapes, kwargs, error, message):
  with pytest.raises(Exception):  # noqa: B017 - PyTorch raises RuntimeError or TypeError
    getattr(TF, name)(*(torch.zeros(s) for s in shapes), **kwargs)
  with pytest.raises(error, match=message):
    getattr(F, name)(*(np.zeros(s) for s in shapes), **kwargs)


@pytest.mark.parametrize("call,message", [
    (lambda: F.conv2d(np.zeros((1, 2, 5, 5)), np.zeros((3, 4, 3, 3))),
     r"input has 2 channels but weight of shape \(3, 4, 3, 3\) \(PyTorch's \[out, in // groups, "
     r"\*K\]\) with groups=1 expects weight.shape\[1\] \* groups = 4"),
    (lambda: F.conv1d(np.zeros((1, 2, 5)), np.zeros((3, 1, 3)), groups=2),
     r"groups \(2\) must divide weight.shape\[0\] \(the output channels, 3\)"),
    (lambda: F.conv_transpose1d(np.zeros((1, 2, 5)), np.zeros((3, 1, 3))),
     r"input has 2 channels but weight of shape \(3, 1, 3\) \(PyTorch's \[in, out // groups, "
     r"\*K\]\) expects weight.shape\[0\] = 3"),
    (lambda: F.conv2d(np.zeros((1, 2, 5, 5)), np.zeros((3, 2, 3, 3)), np.zeros(4)),
     r"bias must have shape \(3,\), one value per output channel of weight of shape "
     r"\(3, 2, 3, 3\), got shape \(4,\)"),
    (lambda: F.conv1d(np.zeros((1, 2, 5)), np.zeros((3, 2, 3)), np.zeros((3, 1))),
     r"bias must have shape \(3,\).*got shape \(3, 1\)"),
    (lambda: F.conv_transpose2d(np.zeros((1, 2, 5, 5)), np.zeros((2, 3, 3, 3)), np.zeros(2),
                                groups=1),
     r"bias must have shape \(3,\)"),
    (lambda: F.conv1d(np.zeros((1, 2, 0)), np.zeros((3, 2, 1))),
     r"input must have a non-empty spatial axis 'W' \(axis 2\) as in PyTorch"),
    (lambda: F.conv2d(np.zeros((1, 2, 5, 5)), np.zeros((3, 2, 3, 3)), groups=0),
     r"groups must be a positive int, got 0"),
])
def test_errors_name_torch_arguments_and_shapes(call, message):
  with pytest.raises(ValueError, match=message) as info:
    call()
  assert "kernel" not in str(info.value) and "x " not in str(info.value)


def test_max_pool_stride_none_or_empty_is_kernel_size():
  x = random((1, 2, 9))
  for stride in (None, (), []):
    _close(F.max_pool1d(x, 3, stride), TF.max_pool1d(_t(x), 3, stride))


def test_grid_sample_and_affine_grid_match_torch():
  x = random((2, 3, 4, 5))
  theta = random((2, 2, 3), seed=1) * 0.7
  grid = F.affine_grid(theta, (2, 3, 6, 7), align_corners=False)
  _close(grid, TF.affine_grid(_t(theta), (2, 3, 6, 7), align_corners=False))
  for mode in ("bilinear", "nearest", "bicubic"):
    _close(F.grid_sample(x, grid, mode, "border", False),
           TF.grid_sample(_t(x), _t(grid), mode, "border", False))
  with pytest.raises(ValueError, match=r"mode='bicubic' needs a 4-D input as in PyTorch"):
    F.grid_sample(random((1, 1, 2, 2, 2)), np.zeros((1, 1, 1, 1, 3)), mode="bicubic")
  with pytest.raises(ValueError, match=r"input must have rank 4 \(\[N, C, H, W\]\) or 5"):
    F.grid_sample(random((1, 1, 2)), np.zeros((1, 1, 1)))
