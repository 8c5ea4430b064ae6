"""One way to validate every public argument.

Every public function and layer validates its arguments here, at trace time, so the same
mistake gets the same exception and the same message shape everywhere:

* ``TypeError`` when the value has the wrong *type* (a string where an int belongs, a float
  where an int belongs, ``None`` or a ``torch.Tensor`` where an array belongs, a complex array
  where the operation is real);
* ``ValueError`` when the type is right but the *value* is not (a negative stride, an unknown
  method name, a kernel of the wrong rank).

Messages read ``"<name> must be <what was expected>, got <the value>"``. String options follow
one case rule: they are matched case-insensitively and returned in their canonical spelling,
and an unknown value is answered with the list of valid ones. Nothing here looks at the
*values* inside an array, so every check is free under ``jit``.
"""

from __future__ import annotations

import operator
from typing import Any, Iterable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

# What an array argument may hold. "any" admits bool arrays too.
_KIND_TEST = {
    "floating": lambda dt: jnp.issubdtype(dt, jnp.floating),
    "integer": lambda dt: jnp.issubdtype(dt, jnp.integer),
    "real": lambda dt: (jnp.issubdtype(dt, jnp.floating) or jnp.issubdtype(dt, jnp.integer)),
    "any": lambda dt: (jnp.issubdtype(dt, jnp.floating) or jnp.issubdtype(dt, jnp.integer)
                       or jnp.issubdtype(dt, jnp.bool_)),
}
_KIND_WORDS = {
    "floating": "a floating-point dtype (float16, bfloat16, float32, float64)",
    "integer": "an integer dtype",
    "real": "a real dtype (floating point or integer)",
    "any": "a real or boolean dtype",
}


def describe(value: Any) -> str:
  """A short description of ``value`` for an error message (never a whole array)."""
  if _is_torch_module(value):
    return f"a torch.nn.Module ({type(value).__name__})"
  if isinstance(value, jax.core.Tracer):
    return f"a traced array of shape {tuple(value.shape)} and dtype {value.dtype}"
  if isinstance(value, (jax.Array, np.ndarray)):
    return f"an array of shape {tuple(value.shape)} and dtype {value.dtype}"
  if _is_torch_tensor(value):
    return f"a torch.Tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
  text = repr(value)
  return text if len(text) <= 80 else text[:77] + "..."


_describe = describe


def _is_torch_tensor(value: Any) -> bool:
  return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def _is_torch_module(value: Any) -> bool:
  return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module"
             for c in type(value).__mro__)


is_torch_tensor = _is_torch_tensor
is_torch_module = _is_torch_module


def array(
    value: Any,
    name: str,
    *,
    kind: str = "real",
    allow_complex: bool = False,
    torch_hint: Optional[str] = None,
) -> jax.Array:
  """``value`` as a ``jax.Array``, refusing what is not numeric data.

  Args:
    value: a ``jax.Array``, a NumPy array, a Python/NumPy scalar or a (nested) sequence of
      numbers. ``None``, strings, bytes, dicts, sequences holding strings and other objects are
      refused with the argument's name, and so is a ``torch.Tensor`` (with ``torch_hint`` saying
      what to call instead).
    name: the argument's name, for the message.
    kind: what the dtype must be: ``"floating"``, ``"integer"``, ``"real"`` (floating or
      integer) or ``"any"`` (also bool).
    allow_complex: whether a complex dtype is accepted (only where the operation is linear).
    torch_hint: what a user holding a ``torch.Tensor`` should do, e.g.
      ``"convert PyTorch weights with jaxup.kernel_from_torch(module.weight)"``.

  Raises:
    TypeError: for anything that is not an array of an accepted dtype.
  """
  if _is_torch_tensor(value) or _is_torch_module(value):
    hint = torch_hint or "convert it with jnp.asarray(t.detach().cpu().numpy())"
    raise TypeError(f"{name} must be a JAX or NumPy array, got {_describe(value)}; {hint}")
  if value is None or isinstance(value, (str, bytes, dict, set)):
    raise TypeError(f"{name} must be an array, got {_describe(value)}")
  if isinstance(value, jax.Array):
    x = value
  else:
    try:
      host = np.asarray(value) if not hasattr(value, "__jax_array__") else value
    except (TypeError, ValueError) as e:
      raise TypeError(f"{name} must be an array, got {_describe(value)} ({e})") from None
    if isinstance(host, np.ndarray) and (host.dtype.kind in "OUSMm" or (
        host.dtype.kind == "V" and not _KIND_TEST["any"](host.dtype))):  # bfloat16 is "V"
      raise TypeError(f"{name} must be an array of numbers, got {_describe(value)}")
    try:
      x = jnp.asarray(host)
    except TypeError as e:
      raise TypeError(f"{name} must be an array, got {_describe(value)} ({e})") from None
  dt = x.dtype
  if jnp.issubdtype(dt, jnp.complexfloating):
    if allow_complex:
      return x
    raise TypeError(
        f"{name} must be real, got a complex array (dtype {dt}); this operation is not "
        "defined for complex numbers: apply it to the real and imaginary parts separately")
  if kind not in _KIND_TEST:
    raise ValueError(f"kind must be one of {tuple(_KIND_TEST)}, got {kind!r}")
  if not _KIND_TEST[kind](dt):
    raise TypeError(f"{name} must have {_KIND_WORDS[kind]}, got dtype {dt}")
  return x


def from_torch(tensor: Any, name: str) -> jax.Array:
  """A floating-point ``torch.Tensor`` (any device) as a ``jax.Array`` of the same dtype.

  NumPy has no bfloat16, so a bfloat16 tensor travels as float32 (exactly) and is cast back.

  Raises:
    TypeError: for a tensor that is not floating point.
  """
  import torch  # only reached with a tensor in hand

  tensor = tensor.detach().cpu()
  if tensor.is_complex() or not tensor.is_floating_point():
    raise TypeError(
        f"{name} must have {_KIND_WORDS['floating']}, got a torch.Tensor of dtype {tensor.dtype}")
  if tensor.dtype == torch.bfloat16:
    return jnp.asarray(tensor.float().numpy(), dtype=jnp.bfloat16)
  return jnp.asarray(tensor.numpy())


def integer(value: Any, name: str, *, minimum: Optional[int] = None) -> int:
  """``value`` as a Python ``int``: Python and NumPy integers (and 0-d integer arrays) only.

  Booleans and floats are refused with ``TypeError`` (``2.0`` is not an integer here), values
  below ``minimum`` with ``ValueError``.
  """
  if isinstance(value, (bool, np.bool_)) or (
      hasattr(value, "dtype") and not jnp.issubdtype(value.dtype, jnp.integer)):
    raise TypeError(f"{name} must be an int, got {_describe(value)}")
  if isinstance(value, jax.core.Tracer):
    raise TypeError(f"{name} must be an int, got {_describe(value)}; it sets a shape, so it "
                    "must be static: pass it as a Python int (static_argnums under jit)")
  try:
    result = operator.index(value)
  except TypeError:
    raise TypeError(f"{name} must be an int, got {_describe(value)}") from None
  if minimum is not None and result < minimum:
    raise ValueError(f"{name} must be {_bound_words(minimum)}, got {result!r}")
  return result


def _bound_words(minimum: int) -> str:
  if minimum == 1:
    return "a positive int"
  if minimum == 0:
    return "a non-negative int"
  return f"an int >= {minimum}"


def number(value: Any, name: str, *, positive: bool = False, finite: bool = True) -> float:
  """``value`` as a Python ``float``: Python and NumPy ints and floats, never bool or complex."""
  if isinstance(value, (bool, np.bool_)) or not isinstance(
      value, (int, float, np.integer, np.floating)):
    if not (hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0
            and (jnp.issubdtype(value.dtype, jnp.floating)
                 or jnp.issubdtype(value.dtype, jnp.integer))):
      raise TypeError(f"{name} must be a real number, got {_describe(value)}")
  result = float(value)
  if finite and not np.isfinite(result):
    raise ValueError(f"{name} must be finite, got {result!r}")
  if positive and not result > 0:
    raise ValueError(f"{name} must be positive, got {result!r}")
  return result


def boolean(value: Any, name: str) -> bool:
  """``value`` as a Python ``bool``: only ``bool`` and ``np.bool_``.

  Strings (``"False"`` is truthy), ints, ``None`` and containers are refused with ``TypeError``.
  """
  if isinstance(value, (bool, np.bool_)):
    return bool(value)
  raise TypeError(f"{name} must be a bool (True or False), got {_describe(value)}")


def choice(
    value: Any,
    name: str,
    choices: Sequence[str],
    *,
    aliases: Optional[Mapping[str, str]] = None,
) -> str:
  """``value`` as one of ``choices``, matched case-insensitively, in its canonical spelling.

  Args:
    value: a string.
    name: the argument's name.
    choices: the canonical spellings.
    aliases: other accepted spellings (any case) mapped to a canonical one.

  Raises:
    TypeError: if ``value`` is not a string.
    ValueError: if it is none of the choices; the message lists them.
  """
  listing = ", ".join(repr(c) for c in choices)
  if not isinstance(value, str):
    raise TypeError(f"{name} must be a string, one of {listing}, got {_describe(value)}")
  folded = {c.lower(): c for c in choices}
  if aliases:
    folded.update({a.lower(): c for a, c in aliases.items()})
  key = value.lower()
  if key not in folded:
    raise ValueError(f"{name} must be one of {listing}, got {value!r}")
  return folded[key]


def dtype(value: Any, name: str, *, kind: str = "any") -> np.dtype:
  """``value`` as a NumPy dtype of ``kind`` (see :func:`array`), refusing unknown names."""
  if value is None or isinstance(value, bool):
    raise TypeError(f"{name} must be a dtype such as 'int32' or jnp.float32, got {value!r}")
  try:
    dt = np.dtype(value)
  except TypeError:
    raise TypeError(
        f"{name} must be a dtype such as 'int32' or jnp.float32, got {_describe(value)}"
    ) from None
  if not _KIND_TEST[kind](dt):
    raise ValueError(f"{name} must be {_KIND_WORDS[kind]}, got {dt.name}")
  return dt


def ints(
    value: Any, length: int, name: str, *, minimum: Optional[int] = 1
) -> tuple[int, ...]:
  """An int or a sequence of ``length`` ints as a tuple, each checked by :func:`integer`."""
  if isinstance(value, (str, bytes)) or value is None:
    raise TypeError(
        f"{name} must be an int or a sequence of {length} ints, got {_describe(value)}")
  if _is_scalar(value):
    return (integer(value, name, minimum=minimum),) * length
  try:
    seq = tuple(value)
  except TypeError:
    raise TypeError(
        f"{name} must be an int or a sequence of {length} ints, got {_describe(value)}"
    ) from None
  if len(seq) != length:
    raise ValueError(
        f"{name} must be an int or a sequence of {length} ints (one per spatial axis), got "
        f"{_describe(value)} of length {len(seq)}")
  return tuple(integer(v, name, minimum=minimum) for v in seq)


def numbers(value: Any, length: int, name: str, *, positive: bool = True) -> tuple[float, ...]:
  """A number or a sequence of ``length`` numbers as a tuple of floats (see :func:`number`)."""
  if isinstance(value, (str, bytes)) or value is None:
    raise TypeError(
        f"{name} must be a number or a sequence of {length} numbers, got {_describe(value)}")
  if _is_scalar(value):
    return (number(value, name, positive=positive),) * length
  try:
    seq = tuple(value)
  except TypeError:
    raise TypeError(
        f"{name} must be a number or a sequence of {length} numbers, got {_describe(value)}"
    ) from None
  if len(seq) != length:
    raise ValueError(
        f"{name} must be a number or a sequence of {length} numbers (one per spatial axis), "
        f"got {_describe(value)} of length {len(seq)}")
  return tuple(number(v, name, positive=positive) for v in seq)


_PRECISION_NAMES = ("default", "high", "highest", "fastest", "bfloat16", "bfloat16_3x",
                    "tensorfloat32", "float32")


def precision(value: Any, name: str = "precision") -> Any:
  """A ``lax`` precision: ``None``, a ``lax.Precision``, one of its names (any case), or a pair
  of those (for the two operands). Returned in a form ``lax`` accepts."""
  if value is None or isinstance(value, jax.lax.Precision):
    return value
  if isinstance(value, str):
    return jax.lax.Precision(choice(value, name, _PRECISION_NAMES))
  if isinstance(value, (tuple, list)) and len(value) == 2:
    return tuple(precision(v, name) for v in value)
  raise TypeError(
      f"{name} must be None, a jax.lax.Precision, one of "
      f"{', '.join(repr(p) for p in _PRECISION_NAMES)} or a pair of those, got "
      f"{_describe(value)}")


def rank(x: jax.Array, name: str, expected: Iterable[int], what: str = "") -> None:
  """Raises ``ValueError`` unless ``x.ndim`` is one of ``expected``."""
  expected = tuple(expected)
  if x.ndim not in expected:
    ranks = " or ".join(str(r) for r in expected)
    extra = f" ({what})" if what else ""
    raise ValueError(f"{name} must have rank {ranks}{extra}, got shape {tuple(x.shape)}")


def _is_scalar(value: Any) -> bool:
  """Whether ``value`` is one number (a Python/NumPy scalar or a 0-d array), not a sequence."""
  if isinstance(value, (str, bytes)):
    return False
  ndim = getattr(value, "ndim", None)  # arrays: a 0-d jax.Array has __len__ but is one number
  if isinstance(ndim, int):
    return ndim == 0
  return not hasattr(value, "__len__")
