"""Per-axis parameters and output-size formulas shared by every operator.

Scalar parameters (factor, stride, dilation, window, padding) apply to every spatial axis; a
tuple gives one value per spatial axis. Padding also takes per-axis ``(lo, hi)`` pairs and the
strings ``"SAME"`` and ``"VALID"``. Everything here is static Python, evaluated at trace time.
"""

from __future__ import annotations

import operator
from typing import Sequence, Union

import numpy as np

IntOrSeq = Union[int, Sequence[int]]
Padding = Union[str, int, Sequence[Union[int, Sequence[int]]]]
PaddingPairs = tuple[tuple[int, int], ...]

PADDING_STRINGS = ("SAME", "VALID")


def _is_scalar(value) -> bool:
  """Whether ``value`` is one number (a Python/NumPy scalar or a 0-d array), not a sequence."""
  return not isinstance(value, (str, bytes)) and not hasattr(value, "__len__") and (
      getattr(value, "ndim", 0) == 0)


def _as_int(value, name: str) -> int:
  if isinstance(value, (bool, np.bool_)):
    raise TypeError(f"{name} must be an integer, got {value!r}")
  try:
    return operator.index(value)
  except TypeError:
    raise TypeError(f"{name} must be an integer, got {value!r}") from None


def normalize_ints(
    value: IntOrSeq, num_spatial: int, name: str, *, minimum: int = 1
) -> tuple[int, ...]:
  """An int or a sequence of ``num_spatial`` ints as a tuple, each ``>= minimum``.

  >>> normalize_ints(2, 3, "stride")
  (2, 2, 2)
  >>> normalize_ints((1, 2), 2, "stride")
  (1, 2)
  """
  if isinstance(value, (str, bytes)):
    raise TypeError(f"{name} must be an int or a sequence of {num_spatial} ints, got {value!r}")
  if _is_scalar(value):
    values = (_as_int(value, name),) * num_spatial
  else:
    try:
      seq = tuple(value)
    except TypeError:
      raise TypeError(
          f"{name} must be an int or a sequence of {num_spatial} ints, got {value!r}"
      ) from None
    if len(seq) != num_spatial:
      raise ValueError(
          f"{name}={value!r} has length {len(seq)}; expected one value per spatial axis "
          f"({num_spatial})"
      )
    values = tuple(_as_int(v, name) for v in seq)
  for v in values:
    if v < minimum:
      kind = "positive" if minimum == 1 else f">= {minimum}"
      raise ValueError(f"{name}={value!r} must be {kind}")
  return values


def normalize_padding(
    padding: Padding,
    num_spatial: int,
    name: str = "padding",
    *,
    allow_strings: bool = True,
    allow_negative: bool = False,
) -> Union[str, PaddingPairs]:
  """Normalises padding to ``"SAME"``, ``"VALID"`` or per-axis ``(lo, hi)`` pairs.

  Accepted forms: an int (both sides of every axis), a sequence of ``num_spatial`` ints (both
  sides of each axis), a sequence of ``num_spatial`` ``(lo, hi)`` pairs, or (when
  ``allow_strings``) ``"SAME"`` / ``"VALID"`` in any case.

  >>> normalize_padding(1, 2)
  ((1, 1), (1, 1))
  >>> normalize_padding([(0, 1), 2], 2)
  ((0, 1), (2, 2))
  >>> normalize_padding("same", 2)
  'SAME'
  """
  if isinstance(padding, str):
    upper = padding.upper()
    if not allow_strings or upper not in PADDING_STRINGS:
      expected = "an int, per-axis ints or per-axis (lo, hi) pairs"
      if allow_strings:
        expected += " or one of " + ", ".join(repr(s) for s in PADDING_STRINGS)
      raise ValueError(f"{name}={padding!r} is not valid; expected {expected}")
    return upper
  if _is_scalar(padding):
    p = _as_int(padding, name)
    pairs = ((p, p),) * num_spatial
  else:
    try:
      seq = tuple(padding)
    except TypeError:
      raise TypeError(f"{name} must be an int, a sequence or a string, got {padding!r}") from None
    if len(seq) != num_spatial:
      raise ValueError(
          f"{name}={padding!r} has length {len(seq)}; expected one entry per spatial axis "
          f"({num_spatial}), each an int or a (lo, hi) pair"
      )
    pairs = []
    for item in seq:
      if _is_scalar(item):
        p = _as_int(item, name)
        pairs.append((p, p))
      else:
        item = tuple(item)
        if len(item) != 2:
          raise ValueError(
              f"{name}={padding!r} has an entry {item!r} that is not an int or a (lo, hi) pair"
          )
        pairs.append((_as_int(item[0], name), _as_int(item[1], name)))
    pairs = tuple(pairs)
  if not allow_negative and any(lo < 0 or hi < 0 for lo, hi in pairs):
    raise ValueError(f"{name}={padding!r} must be non-negative")
  return pairs


def same_padding(size: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
  """The ``(lo, hi)`` padding of ``"SAME"``: output ``ceil(size / stride)``, extra on ``hi``.

  This is the rule of ``lax.conv_general_dilated`` and TensorFlow.

  >>> same_padding(5, 3, 2)
  (1, 1)
  >>> same_padding(4, 4)
  (1, 2)
  """
  out = -(-size // stride)
  total = max((out - 1) * stride + dilation * (kernel_size - 1) + 1 - size, 0)
  return total // 2, total - total // 2


def resolve_padding(
    padding: Union[str, PaddingPairs],
    sizes: Sequence[int],
    kernel_sizes: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> PaddingPairs:
  """Turns normalised padding into explicit ``(lo, hi)`` pairs for the given input sizes."""
  if padding == "VALID":
    return tuple((0, 0) for _ in sizes)
  if padding == "SAME":
    return tuple(
        same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernel_sizes, strides, dilations)
    )
  return tuple(padding)


def _check_positive_scalar(value, name: str):
  value = _as_int(value, name)
  if value < 1:
    raise ValueError(f"{name}={value!r} must be positive")
  return value


def _spatial_args(size, padding, kernel_size, stride, dilation, output_padding=0):
  """Normalises the arguments of the output-size formulas to per-axis tuples.

  A scalar ``size`` is one axis, for which ``padding`` may be an int, a ``(lo, hi)`` pair or a
  string; a sequence ``size`` has one entry per axis and the others follow normalize_ints /
  normalize_padding.
  """
  scalar = _is_scalar(size)
  if scalar:
    size = (_check_positive_scalar(size, "size"),)
    if not isinstance(padding, str):
      padding = (tuple(padding),) if not _is_scalar(padding) else (padding,)
    kernel_size, stride, dilation = (
        (_check_positive_scalar(v, name),) if _is_scalar(v) else v
        for v, name in ((kernel_size, "kernel_size"), (stride, "stride"), (dilation, "dilation")))
    if _is_scalar(output_padding):
      output_padding = (output_padding,)
  n = len(tuple(size))
  sizes = normalize_ints(size, n, "size")
  kernel_sizes = normalize_ints(kernel_size, n, "kernel_size")
  strides = normalize_ints(stride, n, "stride")
  dilations = normalize_ints(dilation, n, "dilation")
  output_paddings = normalize_ints(output_padding, n, "output_padding", minimum=0)
  pads = normalize_padding(padding, n)
  pads = resolve_padding(pads, sizes, kernel_sizes, strides, dilations)
  return scalar, sizes, pads, kernel_sizes, strides, dilations, output_paddings


def conv_output_size(size, kernel_size, *, stride=1, padding=0, dilation=1):
  r"""The output size of a strided, padded, dilated convolution along each axis.

  .. math::
    W_{out} = 1 + \left\lfloor \frac{W_{in} + p_{lo} + p_{hi} - d (W_k - 1) - 1}{S} \right\rfloor

  With ``padding=P`` on both sides and no dilation this is the familiar
  :math:`1 + (W_{in} - W_k + 2P) / S`. It matches ``torch.nn.Conv{1,2,3}d`` and
  ``lax.conv_general_dilated``.

  Args:
    size: the input size, an int or one int per axis.
    kernel_size: the kernel size, an int or one per axis.
    stride: the stride, an int or one per axis.
    padding: an int for both sides, a ``(lo, hi)`` pair, ``"SAME"`` or ``"VALID"``; with
      tuple sizes, one such entry per axis.
    dilation: the kernel dilation, an int or one per axis.

  Returns:
    An int, or a tuple of ints when any argument is per-axis.

  Raises:
    ValueError: if an argument is not positive or the dilated kernel is larger than the padded
      input.

  Example:
    A (5, 5) image and a (3, 3) kernel at stride 1 give a (3, 3) output:

    >>> conv_output_size((5, 5), 3)
    (3, 3)
    >>> conv_output_size(7, 3, stride=2, padding=1)
    4
  """
  scalar, sizes, pads, ks, ss, ds, _ = _spatial_args(size, padding, kernel_size, stride, dilation)
  out = []
  for n, (lo, hi), k, s, d in zip(sizes, pads, ks, ss, ds):
    span = n + lo + hi - d * (k - 1) - 1
    if span < 0:
      raise ValueError(
          f"the dilated kernel ({d * (k - 1) + 1}) is larger than the padded input "
          f"({n + lo + hi}) for size={n}, kernel_size={k}, padding={(lo, hi)}, dilation={d}"
      )
    out.append(1 + span // s)
  return out[0] if scalar else tuple(out)


def conv_transpose_output_size(
    size, kernel_size, *, stride=1, padding=0, output_padding=0, dilation=1
):
  r"""The output size of a transposed convolution along each axis.

  .. math::
    W_{out} = (W_{in} - 1) S - p_{lo} - p_{hi} + d (W_k - 1) + \text{output\_padding} + 1

  ``padding`` is the padding of the convolution being transposed, as in
  ``torch.nn.ConvTranspose{1,2,3}d``; with ``padding=P`` both sides lose ``P``. This is the
  smallest input size the forward convolution maps to ``W_in``; ``output_padding`` (less than
  the stride) picks a larger one.

  Args:
    size: the input size of the transposed convolution, an int or one per axis.
    kernel_size: the kernel size, an int or one per axis.
    stride: the stride of the forward convolution, an int or one per axis.
    padding: the forward convolution's padding: an int, a ``(lo, hi)`` pair, or one per axis.
    output_padding: extra size added on the high side, an int or one per axis.
    dilation: the kernel dilation, an int or one per axis.

  Returns:
    An int, or a tuple of ints when any argument is per-axis.

  Raises:
    ValueError: if an argument is out of range or the result is not positive.

  Example:
    A 2x2 input and a 2x2 kernel at stride 1 give a 3x3 output:

    >>> conv_transpose_output_size((2, 2), 2)
    (3, 3)
    >>> conv_transpose_output_size(4, 3, stride=2, padding=1, output_padding=1)
    8
  """
  if isinstance(padding, str):
    raise ValueError(
        f"padding={padding!r}: the transposed output size needs explicit padding; for 'SAME' "
        "it is size * stride"
    )
  scalar, sizes, pads, ks, ss, ds, ops = _spatial_args(
      size, padding, kernel_size, stride, dilation, output_padding)
  out = []
  for n, (lo, hi), k, s, d, op in zip(sizes, pads, ks, ss, ds, ops):
    m = (n - 1) * s - lo - hi + d * (k - 1) + op + 1
    if m < 1:
      raise ValueError(
          f"the transposed convolution's output size would be {m} for size={n}, "
          f"kernel_size={k}, stride={s}, padding={(lo, hi)}, dilation={d}, output_padding={op}"
      )
    out.append(m)
  return out[0] if scalar else tuple(out)


def normalize_floats(value, num_spatial: int, name: str) -> tuple[float, ...]:
  """A positive finite number or a sequence of ``num_spatial`` of them as a tuple of floats.

  >>> normalize_floats(2, 2, "scale")
  (2.0, 2.0)
  >>> normalize_floats((0.5, 1.5), 2, "scale")
  (0.5, 1.5)
  """
  expected = f"a positive number or a sequence of {num_spatial} positive numbers"
  if isinstance(value, (str, bytes)):
    raise TypeError(f"{name} must be {expected}, got {value!r}")
  seq = (value,) * num_spatial if _is_scalar(value) else value
  try:
    seq = tuple(seq)
  except TypeError:
    raise TypeError(f"{name} must be {expected}, got {value!r}") from None
  if len(seq) != num_spatial:
    raise ValueError(
        f"{name}={value!r} has length {len(seq)}; expected one value per spatial axis "
        f"({num_spatial})"
    )
  values = []
  for v in seq:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
      raise TypeError(f"{name} must be {expected}, got {value!r}")
    if not (np.isfinite(v) and v > 0):
      raise ValueError(f"{name}={value!r} must be positive and finite")
    values.append(float(v))
  return tuple(values)
