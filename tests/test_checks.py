"""Each validator of ``jaxup/_src/checks.py``, tested once and directly: what it accepts, what
it returns, and the exception and message for each kind of wrong value. The bad-input matrix
(tests/test_bad_inputs.py) then only shows that every public callable hands each argument to
the right validator under the right name."""

from __future__ import annotations

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxup._src import checks

HAVE_TORCH = importlib.util.find_spec("torch") is not None


class _Opaque:
  """An object of no numeric meaning."""

  def __repr__(self):
    return "<opaque>"


OPAQUE = _Opaque()


# ------------------------------------------------------------------ describe


def test_describe_names_arrays_by_shape_and_dtype_and_shortens_long_values():
  assert checks.describe(np.ones((2, 3), np.float32)) == (
      "an array of shape (2, 3) and dtype float32")
  assert checks.describe(jnp.ones((4,), jnp.int32)) == "an array of shape (4,) and dtype int32"
  assert checks.describe("abc") == "'abc'"
  long = checks.describe(list(range(100)))
  assert len(long) == 80 and long.endswith("...")
  seen = []
  jax.jit(lambda v: seen.append(checks.describe(v)) or v)(jnp.ones((2,), jnp.float32))
  assert seen == ["a traced array of shape (2,) and dtype float32"]


# ------------------------------------------------------------------ array


@pytest.mark.parametrize("value, error, message", [
    (None, TypeError, r"x must be an array, got None"),
    ("abc", TypeError, r"x must be an array, got 'abc'"),
    (b"abc", TypeError, r"x must be an array, got b'abc'"),
    ({}, TypeError, r"x must be an array, got \{\}"),
    ({1}, TypeError, r"x must be an array, got \{1\}"),
    (["a", "b"], TypeError, r"x must be an array of numbers, got \['a', 'b'\]"),
    (OPAQUE, TypeError, r"x must be an array of numbers, got <opaque>"),
    ([[1.0, 2.0], [3.0]], TypeError, r"x must be an array, got \[\[1.0, 2.0\], \[3.0\]\]"),
    (np.ones(2, np.complex64), TypeError,
     r"x must be real, got a complex array \(dtype complex64\); .* real and imaginary parts"),
    (np.array(["2020-01-01"], "datetime64[D]"), TypeError, r"x must be an array of numbers"),
])
def test_array_refuses_what_is_not_numeric_data(value, error, message):
  with pytest.raises(error, match=message):
    checks.array(value, "x")


@pytest.mark.parametrize("kind, value, message", [
    ("floating", np.ones(2, np.int32), r"x must have a floating-point dtype \(float16, "
     r"bfloat16, float32, float64\), got dtype int32"),
    ("integer", np.ones(2, np.float32), r"x must have an integer dtype, got dtype float32"),
    ("real", np.ones(2, bool), r"x must have a real dtype \(floating point or integer\), got "
     r"dtype bool"),
])
def test_array_refuses_the_wrong_kind_of_dtype(kind, value, message):
  with pytest.raises(TypeError, match=message):
    checks.array(value, "x", kind=kind)


@pytest.mark.parametrize("value, kind, dtype", [
    (np.ones((2, 2)), "floating", jnp.float64),
    (jnp.ones(2, jnp.bfloat16), "floating", jnp.bfloat16),
    (np.ones(2, jnp.bfloat16), "floating", jnp.bfloat16),  # NumPy's "V" kind, still numbers
    ([1, 2, 3], "integer", jnp.int64),
    (2.5, "real", jnp.float64),
    (np.ones(2, bool), "any", jnp.bool_),
])
def test_array_accepts_numbers_as_a_jax_array(value, kind, dtype):
  x = checks.array(value, "x", kind=kind)
  assert isinstance(x, jax.Array) and x.dtype == dtype
  np.testing.assert_array_equal(np.asarray(x, np.float64), np.asarray(value, np.float64))


def test_array_complex_only_where_allowed_and_kind_checked():
  z = np.ones(2, np.complex64)
  assert checks.array(z, "x", allow_complex=True).dtype == jnp.complex64
  with pytest.raises(ValueError, match=r"kind must be one of .* got 'complex'"):
    checks.array(np.ones(2), "x", kind="complex")


@pytest.mark.skipif(not HAVE_TORCH, reason="needs torch")
def test_array_refuses_torch_with_the_hint():
  import torch  # pylint: disable=import-outside-toplevel
  with pytest.raises(TypeError, match=r"x must be a JAX or NumPy array, got a torch.Tensor of "
                     r"shape \(2,\) .*; convert it with jnp.asarray\(t.detach\(\).cpu\(\)"):
    checks.array(torch.zeros(2), "x")
  with pytest.raises(TypeError, match=r"w must be a JAX or NumPy array, got a torch.nn.Module "
                     r"\(Linear\); use kernel_from_torch"):
    checks.array(torch.nn.Linear(2, 2), "w", torch_hint="use kernel_from_torch")
  assert checks.is_torch_tensor(torch.zeros(1)) and not checks.is_torch_tensor(np.zeros(1))
  assert checks.is_torch_module(torch.nn.Linear(1, 1)) and not checks.is_torch_module(
      torch.zeros(1))


# ------------------------------------------------------------------ from_torch


@pytest.mark.skipif(not HAVE_TORCH, reason="needs torch")
def test_from_torch_keeps_floating_dtypes_and_refuses_others():
  import torch  # pylint: disable=import-outside-toplevel
  w = torch.arange(6, dtype=torch.bfloat16).reshape(2, 3).requires_grad_()
  got = checks.from_torch(w, "weight")
  assert got.dtype == jnp.bfloat16 and got.shape == (2, 3)
  np.testing.assert_array_equal(np.asarray(got, np.float32), np.arange(6).reshape(2, 3))
  assert checks.from_torch(torch.ones(2, dtype=torch.float64), "weight").dtype == jnp.float64
  for dtype in (torch.int32, torch.complex64, torch.bool):
    with pytest.raises(TypeError, match=rf"weight must have a floating-point dtype .* got a "
                       rf"torch.Tensor of dtype {dtype}"):
      checks.from_torch(torch.zeros(2, dtype=dtype), "weight")


# ------------------------------------------------------------------ integer


@pytest.mark.parametrize("value, message", [
    (None, r"n must be an int, got None"),
    ("2", r"n must be an int, got '2'"),
    (1.5, r"n must be an int, got 1.5"),
    (2.0, r"n must be an int, got 2.0"),
    (np.float32(2), r"n must be an int, got np.float32\(2.0\)"),
    (np.array(2.0), r"n must be an int, got an array of shape \(\) and dtype float64"),
    (True, r"n must be an int, got True"),
    (np.True_, r"n must be an int, got np.True_"),
    (1j, r"n must be an int, got 1j"),
    ((1, 1), r"n must be an int, got \(1, 1\)"),
    (OPAQUE, r"n must be an int, got <opaque>"),
])
def test_integer_refuses_non_integers(value, message):
  with pytest.raises(TypeError, match=message):
    checks.integer(value, "n")


def test_integer_minimum_and_accepted_values():
  for value in (3, np.int8(3), np.uint64(3), np.array(3), jnp.array(3)):
    got = checks.integer(value, "n", minimum=1)
    assert got == 3 and type(got) is int
  assert checks.integer(-5, "n") == -5
  with pytest.raises(ValueError, match=r"n must be a positive int, got 0"):
    checks.integer(0, "n", minimum=1)
  with pytest.raises(ValueError, match=r"n must be a non-negative int, got -1"):
    checks.integer(-1, "n", minimum=0)
  with pytest.raises(ValueError, match=r"n must be an int >= 2, got 1"):
    checks.integer(1, "n", minimum=2)
  with pytest.raises(TypeError, match=r"n must be an int, got a traced array .* must be static"):
    jax.jit(lambda v: checks.integer(v, "n"))(2)


# ------------------------------------------------------------------ number


@pytest.mark.parametrize("value, error, message", [
    (None, TypeError, r"a must be a real number, got None"),
    ("0.5", TypeError, r"a must be a real number, got '0.5'"),
    (True, TypeError, r"a must be a real number, got True"),
    (1j, TypeError, r"a must be a real number, got 1j"),
    ([1.0], TypeError, r"a must be a real number, got \[1.0\]"),
    (np.ones(2), TypeError, r"a must be a real number, got an array of shape \(2,\)"),
    (float("nan"), ValueError, r"a must be finite, got nan"),
    (float("-inf"), ValueError, r"a must be finite, got -inf"),
])
def test_number_refuses_non_numbers_and_non_finite(value, error, message):
  with pytest.raises(error, match=message):
    checks.number(value, "a")


def test_number_positive_finite_and_accepted_values():
  for value in (2, 2.0, np.float32(2), np.int64(2), np.array(2.0), jnp.array(2)):
    got = checks.number(value, "a")
    assert got == 2.0 and type(got) is float
  assert checks.number(float("inf"), "a", finite=False) == float("inf")
  assert checks.number(-1, "a") == -1.0
  for value in (0, -0.5):
    with pytest.raises(ValueError, match=rf"a must be positive, got {float(value)!r}"):
      checks.number(value, "a", positive=True)


# ------------------------------------------------------------------ boolean


@pytest.mark.parametrize("value, shown", [
    (None, "None"), ("False", "'False'"), ("True", "'True'"), (0, "0"), (1, "1"),
    ({}, r"\{\}"), ([], r"\[\]"), (np.float64(1.0), r"np.float64\(1.0\)"),
    (OPAQUE, "<opaque>")])
def test_boolean_refuses_everything_but_bools(value, shown):
  with pytest.raises(TypeError, match=r"flag must be a bool \(True or False\), got " + shown):
    checks.boolean(value, "flag")


def test_boolean_accepts_python_and_numpy_bools():
  assert checks.boolean(np.True_, "flag") is True
  assert checks.boolean(False, "flag") is False


# ------------------------------------------------------------------ choice


def test_choice_is_case_insensitive_with_aliases_and_lists_the_valid_values():
  assert checks.choice("Linear", "method", ("linear", "cubic")) == "linear"
  assert checks.choice("BILINEAR", "method", ("linear", "cubic"),
                       aliases={"bilinear": "linear"}) == "linear"
  for value in (1, None, ["linear"]):
    with pytest.raises(TypeError, match=r"method must be a string, one of 'linear', 'cubic', "
                       r"got "):
      checks.choice(value, "method", ("linear", "cubic"))
  for value in ("bogus", ""):
    with pytest.raises(ValueError, match=rf"method must be one of 'linear', 'cubic', got "
                       rf"{value!r}"):
      checks.choice(value, "method", ("linear", "cubic"))


# ------------------------------------------------------------------ dtype


@pytest.mark.parametrize("value, error, message", [
    (None, TypeError, r"dtype must be a dtype such as 'int32' or jnp.float32, got None"),
    (True, TypeError, r"dtype must be a dtype such as 'int32' or jnp.float32, got True"),
    ("float99", TypeError, r"dtype must be a dtype such as 'int32' .* got 'float99'"),
    (OPAQUE, TypeError, r"dtype must be a dtype such as 'int32' .* got <opaque>"),
    ("float32", ValueError, r"dtype must be an integer dtype, got float32"),
    (jnp.bool_, ValueError, r"dtype must be an integer dtype, got bool"),
])
def test_dtype_refuses_unknown_names_and_the_wrong_kind(value, error, message):
  with pytest.raises(error, match=message):
    checks.dtype(value, "dtype", kind="integer")


def test_dtype_accepts_names_and_types():
  assert checks.dtype("int32", "dtype", kind="integer") == np.int32
  assert checks.dtype(jnp.bfloat16, "dtype", kind="floating") == jnp.bfloat16
  assert checks.dtype(bool, "dtype") == np.bool_


# ------------------------------------------------------------------ ints and numbers


@pytest.mark.parametrize("value, error, message", [
    (None, TypeError, r"s must be an int or a sequence of 2 ints, got None"),
    ("2", TypeError, r"s must be an int or a sequence of 2 ints, got '2'"),
    (OPAQUE, TypeError, r"s must be an int, got <opaque>"),
    (["a", "b"], TypeError, r"s must be an int, got 'a'"),
    ((2, 2.5), TypeError, r"s must be an int, got 2.5"),
    (np.float64(2), TypeError, r"s must be an int, got np.float64\(2.0\)"),
    (True, TypeError, r"s must be an int, got True"),
    ((2, 2, 2), ValueError, r"s must be an int or a sequence of 2 ints \(one per spatial axis\), "
     r"got \(2, 2, 2\) of length 3"),
    (0, ValueError, r"s must be a positive int, got 0"),
    ((2, -1), ValueError, r"s must be a positive int, got -1"),
])
def test_ints_refuses_wrong_values_per_axis(value, error, message):
  with pytest.raises(error, match=message):
    checks.ints(value, 2, "s")


def test_ints_broadcasts_a_scalar_and_accepts_sequences_and_arrays():
  assert checks.ints(2, 3, "s") == (2, 2, 2)
  assert checks.ints(np.array(2), 2, "s") == (2, 2)
  assert checks.ints(jnp.array([1, 2]), 2, "s") == (1, 2)
  assert checks.ints([0, 1], 2, "s", minimum=0) == (0, 1)
  assert checks.ints((-3,), 1, "s", minimum=None) == (-3,)


@pytest.mark.parametrize("value, error, message", [
    (None, TypeError, r"f must be a number or a sequence of 2 numbers, got None"),
    ("2", TypeError, r"f must be a number or a sequence of 2 numbers, got '2'"),
    (["a", "b"], TypeError, r"f must be a real number, got 'a'"),
    (OPAQUE, TypeError, r"f must be a real number, got <opaque>"),
    (True, TypeError, r"f must be a real number, got True"),
    (-1.0, ValueError, r"f must be positive, got -1.0"),
    ((2.0, 0), ValueError, r"f must be positive, got 0.0"),
    (float("inf"), ValueError, r"f must be finite, got inf"),
    ((2.0, 2.0, 2.0), ValueError, r"f must be a number or a sequence of 2 numbers \(one per "
     r"spatial axis\), got \(2.0, 2.0, 2.0\) of length 3"),
])
def test_numbers_refuses_wrong_values_per_axis(value, error, message):
  with pytest.raises(error, match=message):
    checks.numbers(value, 2, "f")


def test_numbers_broadcasts_and_positive_is_optional():
  assert checks.numbers(2, 2, "f") == (2.0, 2.0)
  assert checks.numbers((0.5, np.float32(3)), 2, "f") == (0.5, 3.0)
  assert checks.numbers(-1, 1, "f", positive=False) == (-1.0,)


# ------------------------------------------------------------------ precision


def test_precision_accepts_names_enums_and_pairs():
  assert checks.precision(None) is None
  assert checks.precision("Highest") == jax.lax.Precision.HIGHEST
  assert checks.precision(jax.lax.Precision.HIGH) == jax.lax.Precision.HIGH
  assert checks.precision(["default", jax.lax.Precision.HIGHEST]) == (
      jax.lax.Precision.DEFAULT, jax.lax.Precision.HIGHEST)


@pytest.mark.parametrize("value, error, message", [
    (3, TypeError, r"precision must be None, a jax.lax.Precision, one of 'default', .* or a "
     r"pair of those, got 3"),
    ("bogus", ValueError, r"precision must be one of 'default', .* got 'bogus'"),
    (("highest", 1.5), TypeError, r"precision must be None, .* got 1.5"),
    (("high", "high", "high"), TypeError, r"precision must be None, .* got \('high', 'high', "
     r"'high'\)"),
])
def test_precision_refuses(value, error, message):
  with pytest.raises(error, match=message):
    checks.precision(value)


# ------------------------------------------------------------------ rank


def test_rank_names_the_argument_the_ranks_and_the_shape():
  checks.rank(jnp.ones((2, 3)), "w", (2, 3))
  with pytest.raises(ValueError, match=r"w must have rank 3 or 4 \(a kernel\), got shape "
                     r"\(2,\)"):
    checks.rank(jnp.ones(2), "w", (3, 4), "a kernel")
  with pytest.raises(ValueError, match=r"w must have rank 1, got shape \(\)$"):
    checks.rank(jnp.ones(()), "w", [1])
