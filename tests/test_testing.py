"""jaxup.testing: each check passes on a correct pair and fails on a wrong one."""

import doctest
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxup
from jaxup import testing
from tests.helpers import random

GUIDE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "guides" / "testing.md"


def _nearest_pair(layout_shape=(2, 3, 4, 2)):
  x = random(layout_shape)
  n, h, w, c = layout_shape
  up = lambda v: jaxup.upsample_nearest(v, 2)
  down = lambda y: y.reshape(n, h, 2, w, 2, c).sum(axis=(2, 4))
  return up, down, x


def test_assert_adjoint_passes_a_true_pair_and_fails_a_wrong_one():
  up, down, x = _nearest_pair()
  testing.assert_adjoint(up, down, x)
  with pytest.raises(AssertionError, match=r"down is not the adjoint of up: <up\(x\), y> = "):
    testing.assert_adjoint(up, lambda y: y[:, ::2, ::2], x)  # subsampling is not the adjoint
  # The tolerance is relative and tight: a 1e-9 relative error fails at float64's default
  # (1e-12) and passes with rtol=1e-6.
  scaled = lambda y: down(y) * (1 + 1e-9)
  with pytest.raises(AssertionError, match="exceeds rtol"):
    testing.assert_adjoint(up, scaled, x)
  testing.assert_adjoint(up, scaled, x, rtol=1e-6)


def test_assert_adjoint_checks_the_shape_and_requires_down():
  up, down, x = _nearest_pair()
  with pytest.raises(AssertionError, match=r"down\(y\) has shape \(2, 3, 4\), expected "
                     r"\(2, 3, 4, 2\)"):
    testing.assert_adjoint(up, lambda y: down(y)[..., 0], x)
  with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
    testing.assert_adjoint(up, x)  # pylint: disable=no-value-for-parameter
  with pytest.raises(TypeError, match=r"down must be a callable .* got an array"):
    testing.assert_adjoint(up, x, x)
  with pytest.raises(TypeError, match="x must be an array, got None"):
    testing.assert_adjoint(up, down, None)
  with pytest.raises(ValueError, match=r"rtol must be positive, got -1.0"):
    testing.assert_adjoint(up, down, x, rtol=-1.0)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64])
def test_default_tolerance_fits_each_dtype(dtype):
  """The default tolerance accepts a true pair computed in ``dtype`` and still refuses a
  near miss: the convolution with its kernel flipped along one axis."""
  kernel = random((3, 3, 2, 3), seed=3).astype(dtype)
  y = random((2, 4, 5, 3), seed=4).astype(dtype)
  up = lambda v: jaxup.conv_transpose(v, kernel, stride=2, padding=1)
  down = lambda z: jaxup.conv(z, kernel, stride=2, padding=1)
  testing.assert_adjoint(up, down, y)
  testing.assert_linear_transpose(up, down, y)
  flipped = lambda z: jaxup.conv(z, kernel[::-1], stride=2, padding=1)
  with pytest.raises(AssertionError, match="not the adjoint"):
    testing.assert_adjoint(up, flipped, y)


def test_assert_transpose_is_vjp():
  kernel = random((3, 2, 3), seed=1)  # conv: [K, C_in, C_out]
  y = random((2, 5, 3), seed=2)
  forward = lambda v: jaxup.conv(v, kernel, stride=2, padding=1)
  transposed = lambda v: jaxup.conv_transpose(v, kernel, stride=2, padding=1, output_size=10)
  testing.assert_transpose_is_vjp(transposed, forward, y, (2, 10, 2))
  testing.assert_transpose_is_vjp(transposed, forward, y, jax.ShapeDtypeStruct((2, 10, 2),
                                                                              jnp.float64))
  testing.assert_transpose_is_vjp(transposed, forward, y, random((2, 10, 2), seed=3))
  flipped = lambda v: jaxup.conv_transpose(v, kernel[::-1], stride=2, padding=1,
                                           output_size=10)
  with pytest.raises(AssertionError, match="differs from the VJP of forward"):
    testing.assert_transpose_is_vjp(flipped, forward, y, (2, 10, 2))
  with pytest.raises(AssertionError, match=r"forward's output has shape \(2, 5, 3\), expected "
                     r"\(2, 4, 3\)"):
    testing.assert_transpose_is_vjp(transposed, forward, y[:, :4], (2, 10, 2))


def test_assert_linear_transpose():
  x = random((2, 3, 4, 1))
  up = lambda v: jaxup.bed_of_nails(v, 2)
  testing.assert_linear_transpose(up, lambda y: y[:, ::2, ::2], x)
  with pytest.raises(AssertionError, match=r"jax.linear_transpose\(up\) differs from down"):
    testing.assert_linear_transpose(up, lambda y: y[:, 1::2, ::2], x)


def test_tolerance_table():
  assert [testing.tolerance(d) for d in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)] \
      == [1e-2, 5e-2, 1e-5, 1e-12]
  assert testing.tolerance(np.int8) == testing.tolerance("bool") == 0.0
  assert testing.tolerance(jnp.complex64) == testing.tolerance(jnp.float32)
  with pytest.raises(TypeError, match="dtype must be a dtype such as 'int32'"):
    testing.tolerance("float99")


def test_the_guide_runs():
  failures, tried = doctest.testfile(str(GUIDE), module_relative=False,
                                     optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
  assert tried >= 8 and failures == 0


def test_importable_as_a_submodule():
  import importlib
  assert importlib.import_module("jaxup.testing") is jaxup.testing
  assert set(testing.__all__) == {"assert_adjoint", "assert_linear_transpose",
                                  "assert_transpose_is_vjp", "tolerance"}
