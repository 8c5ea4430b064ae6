"""Autodiff consistency checks for linear operators: adjoints, transposes and VJPs.

Every check compares an operator with something *independent* of it: an adjoint with a
down-sampler the caller names, a transposed operator with the VJP of its forward operator.
Comparing a function with ``jax.linear_transpose`` of itself proves nothing, so ``down`` is
always required.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxup._src import checks

# Relative tolerances of results computed in each dtype: a few units in the last place of a
# short reduction (float16 eps 9.8e-4, bfloat16 7.8e-3, float32 1.2e-7, float64 2.2e-16).
_TOLERANCES = {
    np.dtype(jnp.float16): 1e-2,
    np.dtype(jnp.bfloat16): 5e-2,
    np.dtype(jnp.float32): 1e-5,
    np.dtype(jnp.float64): 1e-12,
}


def tolerance(dtype: Any) -> float:
  """The relative tolerance jaxup's tests use for results computed in ``dtype``.

  ``float16``: 1e-2, ``bfloat16``: 5e-2, ``float32``: 1e-5, ``float64``: 1e-12; integer and
  boolean dtypes move data exactly: 0. A complex dtype has the tolerance of its real part.

  Args:
    dtype: a dtype, a dtype name (``"bfloat16"``) or a scalar type (``jnp.float32``).

  Returns:
    The tolerance, a Python float.

  Raises:
    TypeError: if ``dtype`` is not a dtype.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxup import testing
    >>> testing.tolerance(jnp.float32), testing.tolerance("bfloat16"), testing.tolerance("int8")
    (1e-05, 0.05, 0.0)
  """
  if dtype is not None and not isinstance(dtype, bool) and _is_complex_dtype(dtype):
    dtype = np.finfo(np.dtype(dtype)).dtype
  dt = checks.dtype(dtype, "dtype")
  if jnp.issubdtype(dt, jnp.floating):
    # float8 and other narrow floats: their own machine epsilon, times ten.
    return _TOLERANCES.get(dt, 10 * float(jnp.finfo(dt).eps))
  return 0.0


def _is_complex_dtype(dtype) -> bool:
  try:
    return jnp.issubdtype(np.dtype(dtype), jnp.complexfloating)
  except TypeError:
    return False


def _callable(fn: Any, name: str) -> Callable:
  if not callable(fn):
    raise TypeError(f"{name} must be a callable (a function of one array), got "
                    f"{checks.describe(fn)}")
  return fn


def _rtol(rtol: Optional[float], *dtypes) -> float:
  if rtol is not None:
    return checks.number(rtol, "rtol", positive=True)
  return max(tolerance(d) for d in dtypes)


def _wide(a: jax.Array) -> np.ndarray:
  """``a`` on the host in float64, so the products and sums add no rounding of their own."""
  return np.asarray(a).astype(np.float64)


def _random_like(struct, seed: int) -> jax.Array:
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.standard_normal(struct.shape), dtype=struct.dtype)


def _check_shape(got, expected_struct, what: str) -> None:
  if tuple(got.shape) != tuple(expected_struct.shape):
    raise AssertionError(
        f"{what} has shape {tuple(got.shape)}, expected {tuple(expected_struct.shape)}")


def assert_adjoint(
    up: Callable[[jax.Array], jax.Array],
    down: Callable[[jax.Array], jax.Array],
    x: ArrayLike,
    *,
    rtol: Optional[float] = None,
    seed: int = 0,
) -> None:
  r"""Asserts that ``down`` is the adjoint of the linear operator ``up`` at ``x``.

  The dot-product identity :math:`\langle \mathrm{up}(x), y \rangle = \langle x,
  \mathrm{down}(y) \rangle` is checked for a standard-normal ``y`` of ``up(x)``'s shape and
  dtype. Both inner products are summed in float64 on the host; they must agree within
  ``rtol`` times :math:`\sum |\mathrm{up}(x) \, y| + \sum |x \, \mathrm{down}(y)|`, a scale
  that does not cancel, so the check is meaningful however large or small the result.

  ``down`` is the operator you expect to be the adjoint, written independently of ``up``
  (sum pooling for nearest upsampling, strided subsampling for zero insertion, the
  convolution for a transposed convolution). A wrong ``down`` fails the check for almost every
  ``y``: one draw suffices.

  Args:
    up: a linear function of one array (e.g. an upsampler), ``x -> up(x)``.
    down: its expected adjoint, a function of an array shaped like ``up(x)`` returning an array
      shaped like ``x``.
    x: a floating-point array at which to check (its values matter only for the scale).
    rtol: the relative tolerance; ``None`` is :func:`tolerance` of the less precise of the
      dtypes of ``x`` and ``up(x)``.
    seed: the seed of ``y``.

  Raises:
    AssertionError: if the identity does not hold, or ``down(y)`` does not have ``x``'s shape.
    TypeError: if ``up`` or ``down`` is not callable or ``x`` is not a floating-point array.

  Example:
    Nearest upsampling by 2 and sum pooling over each 2-block are adjoint; a strided
    subsampling is not the adjoint of nearest upsampling:

    >>> import jax.numpy as jnp
    >>> import jaxup
    >>> from jaxup import testing
    >>> x = jnp.arange(6.0).reshape(1, 3, 2)  # [N, W, C]
    >>> up = lambda v: jaxup.upsample_nearest(v, 2, layout="NWC")
    >>> sum_pool = lambda y: y.reshape(1, 3, 2, 2).sum(axis=2)
    >>> testing.assert_adjoint(up, sum_pool, x)
    >>> testing.assert_adjoint(up, lambda y: y[:, ::2], x)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: down is not the adjoint of up: <up(x), y> = ... but <x, down(y)> = ...
  """
  up, down = _callable(up, "up"), _callable(down, "down")
  x = checks.array(x, "x", kind="floating")
  seed = checks.integer(seed, "seed", minimum=0)
  y_struct = jax.eval_shape(up, x)
  y = _random_like(y_struct, seed)
  up_x, down_y = up(x), down(y)
  _check_shape(down_y, x, "down(y)")
  rtol = _rtol(rtol, x.dtype, y_struct.dtype)
  up_x, y, x, down_y = (_wide(a) for a in (up_x, y, x, down_y))
  lhs, rhs = float(np.sum(up_x * y)), float(np.sum(x * down_y))
  scale = float(np.sum(np.abs(up_x * y)) + np.sum(np.abs(x * down_y)))
  if not abs(lhs - rhs) <= rtol * scale:
    raise AssertionError(
        f"down is not the adjoint of up: <up(x), y> = {lhs!r} but <x, down(y)> = {rhs!r}; "
        f"the difference {abs(lhs - rhs):.3g} exceeds rtol * scale = {rtol:.3g} * "
        f"{scale:.3g}")


def assert_transpose_is_vjp(
    transposed: Callable[[jax.Array], jax.Array],
    forward: Callable[[jax.Array], jax.Array],
    y: ArrayLike,
    x_shape_or_example: Union[Sequence[int], ArrayLike, jax.ShapeDtypeStruct],
    *,
    rtol: Optional[float] = None,
) -> None:
  r"""Asserts that ``transposed(y)`` equals the VJP of ``forward`` applied to ``y``.

  For a linear ``forward`` (a convolution, a pooling-by-gather, a subsampling) its VJP at any
  point is its transpose; ``transposed`` is the operator that claims to be it (a transposed
  convolution, an unpooling, a zero insertion). The VJP is taken by ``jax.vjp`` at an input
  of ``x_shape_or_example``: a shape (the dtype is ``y``'s), a ``jax.ShapeDtypeStruct`` (zeros
  of it) or an example array. Results agree when every element differs by at most
  ``rtol * max(1, max |vjp|)``.

  Args:
    transposed: the operator under test, ``y -> x``.
    forward: the linear operator it transposes, ``x -> y``.
    y: the cotangent, shaped like ``forward``'s output.
    x_shape_or_example: ``forward``'s input: a shape, a ``jax.ShapeDtypeStruct`` or an array.
    rtol: the tolerance; ``None`` is :func:`tolerance` of the less precise of the dtypes of
      ``y`` and ``forward``'s input.

  Raises:
    AssertionError: if the results differ, or ``forward``'s output is not shaped like ``y``.
    TypeError: if an argument has the wrong type.

  Example:
    ``conv_transpose`` is defined as the VJP of ``conv`` with the same kernel:

    >>> import jax.numpy as jnp
    >>> import jaxup
    >>> from jaxup import testing
    >>> kernel = jnp.arange(6.0).reshape(3, 1, 2)  # conv: [K, C_in, C_out]
    >>> y = jnp.arange(8.0).reshape(1, 4, 2)  # [N, W, C]
    >>> testing.assert_transpose_is_vjp(
    ...     lambda v: jaxup.conv_transpose(v, kernel, stride=2, padding=1, output_padding=1),
    ...     lambda v: jaxup.conv(v, kernel, stride=2, padding=1),
    ...     y, (1, 8, 1))
  """
  transposed, forward = _callable(transposed, "transposed"), _callable(forward, "forward")
  y = checks.array(y, "y", kind="floating")
  x0 = _example(x_shape_or_example, y.dtype)
  out, vjp = jax.vjp(forward, x0)
  _check_shape(out, y, "forward's output")
  (expected,) = vjp(y.astype(out.dtype))
  got = transposed(y)
  _check_shape(got, x0, "transposed(y)")
  rtol = _rtol(rtol, y.dtype, x0.dtype)
  expected, got = _wide(expected), _wide(got)
  atol = rtol * max(1.0, float(np.max(np.abs(expected), initial=0.0)))
  np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol,
                             err_msg="transposed(y) differs from the VJP of forward")


def _example(value, dtype) -> jax.Array:
  """The linearisation point of ``assert_transpose_is_vjp`` from a shape, struct or array."""
  if isinstance(value, jax.ShapeDtypeStruct):
    return jnp.zeros(value.shape, value.dtype)
  if isinstance(value, (tuple, list)) and all(
      isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
    shape = tuple(checks.integer(v, "x_shape_or_example", minimum=0) for v in value)
    return jnp.zeros(shape, dtype)
  return checks.array(value, "x_shape_or_example", kind="floating")


def assert_linear_transpose(
    up: Callable[[jax.Array], jax.Array],
    down: Callable[[jax.Array], jax.Array],
    x: ArrayLike,
    *,
    rtol: Optional[float] = None,
    seed: int = 0,
) -> None:
  """Asserts that ``jax.linear_transpose`` of ``up`` at ``x`` is ``down``.

  Where :func:`assert_adjoint` checks one inner product, this compares the whole transposed
  array, element by element, for a standard-normal ``y`` of ``up(x)``'s shape: JAX's transpose
  rule of every primitive ``up`` uses must produce the named down-sampler. Elements agree
  within ``rtol * max(1, max |down(y)|)``.

  Args:
    up: a linear function of one array.
    down: its expected transpose, from ``up(x)``'s shape to ``x``'s.
    x: a floating-point array giving the shape and dtype of ``up``'s input.
    rtol: the tolerance; ``None`` is :func:`tolerance` of the less precise dtype involved.
    seed: the seed of ``y``.

  Raises:
    AssertionError: if the transpose differs from ``down(y)``.
    TypeError: if ``up`` or ``down`` is not callable or ``x`` is not a floating-point array.

  Example:
    The transpose of bed-of-nails zero insertion is strided subsampling:

    >>> import jax.numpy as jnp
    >>> import jaxup
    >>> from jaxup import testing
    >>> x = jnp.ones((2, 3, 4, 1))  # [N, H, W, C]
    >>> testing.assert_linear_transpose(
    ...     lambda v: jaxup.bed_of_nails(v, 2), lambda y: y[:, ::2, ::2], x)
  """
  up, down = _callable(up, "up"), _callable(down, "down")
  x = checks.array(x, "x", kind="floating")
  seed = checks.integer(seed, "seed", minimum=0)
  y_struct = jax.eval_shape(up, x)
  y = _random_like(y_struct, seed)
  (transposed,) = jax.linear_transpose(up, jax.ShapeDtypeStruct(x.shape, x.dtype))(y)
  expected = down(y)
  _check_shape(expected, x, "down(y)")
  rtol = _rtol(rtol, x.dtype, y_struct.dtype)
  expected, transposed = _wide(expected), _wide(transposed)
  atol = rtol * max(1.0, float(np.max(np.abs(expected), initial=0.0)))
  np.testing.assert_allclose(transposed, expected, rtol=rtol, atol=atol,
                             err_msg="jax.linear_transpose(up) differs from down")
