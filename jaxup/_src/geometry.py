"""Per-axis parameters and output-size formulas shared by every operator.

Scalar parameters (factor, stride, dilation, window, padding) apply to every spatial axis; a
tuple gives one value per spatial axis. Padding also takes per-axis ``(lo, hi)`` pairs and the
strings ``"SAME"`` and ``"VALID"``. Everything here is static Python, evaluated at trace time.
"""

from __future__ import annotations

from typing import Sequence, Union

from jaxup._src import checks

IntOrSeq = Union[int, Sequence[int]]
Padding = Union[str, int, Sequence[Union[int, Sequence[int]]]]
PaddingPairs = tuple[tuple[int, int], ...]

PADDING_STRINGS = ("SAME", "VALID")


def _is_scalar(value) -> bool:
  """Whether ``value`` is one number (a Python/NumPy scalar or a 0-d array), not a sequence."""
  return checks._is_scalar(value)


def normalize_ints(
    value: IntOrSeq, num_spatial: int, name: str, *, minimum: int = 1
) -> tuple[int, ...]:
  """An int or a sequence of ``num_spatial`` ints as a tuple, each ``>= minimum``.

  A thin name for :func:`jaxup._src.checks.ints`, which every operator shares.

  >>> normalize_ints(2, 3, "stride")
  (2, 2, 2)
  >>> normalize_ints((1, 2), 2, "stride")
  (1, 2)
  """
  return checks.ints(value, num_spatial, name, minimum=minimum)


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
  expected = "an int, per-axis ints or per-axis (lo, hi) pairs"
  if allow_strings:
    expected += " or one of " + ", ".join(repr(p) for p in PADDING_STRINGS)
  if isinstance(padding, str):
    if not allow_strings:
      raise ValueError(f"{name} must be {expected}, got {padding!r}")
    return checks.choice(padding, name, PADDING_STRINGS)
  minimum = None if allow_negative else 0
  if padding is None or isinstance(padding, (bytes, dict, set)):
    raise TypeError(f"{name} must be {expected}, got {checks.describe(padding)}")
  if _is_scalar(padding):
    p = checks.integer(padding, name, minimum=minimum)
    return ((p, p),) * num_spatial
  try:
    seq = tuple(padding)
  except TypeError:
    raise TypeError(f"{name} must be {expected}, got {checks.describe(padding)}") from None
  if len(seq) != num_spatial:
    raise ValueError(
        f"{name} must be {expected} with one entry per spatial axis ({num_spatial}), got "
        f"{checks.describe(padding)} of length {len(seq)}")
  pairs = []
  for item in seq:
    if _is_scalar(item):
      p = checks.integer(item, name, minimum=minimum)
      pairs.append((p, p))
      continue
    if isinstance(item, (str, bytes)) or not hasattr(item, "__len__"):
      raise TypeError(f"{name} must be {expected}, got {checks.describe(padding)}")
    item = tuple(item)
    if len(item) != 2:
      raise ValueError(
          f"{name} must be {expected}, got {checks.describe(padding)} with an entry "
          f"{item!r} that is not an int or a (lo, hi) pair")
    pairs.append(tuple(checks.integer(v, name, minimum=minimum) for v in item))
  return tuple(pairs)


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


def _spatial_args(size, padding, kernel_size, stride, dilation, output_padding=0):
  """Normalises the arguments of the output-size formulas to per-axis tuples.

  A scalar ``size`` is one axis, for which ``padding`` may be an int, a ``(lo, hi)`` pair or a
  string; a sequence ``size`` has one entry per axis and the others follow normalize_ints /
  normalize_padding.
  """
  scalar = _is_scalar(size)
  if scalar:
    size = (checks.integer(size, "size", minimum=1),)
    if not isinstance(padding, str) and padding is not None:
      if hasattr(padding, "__len__") and len(padding) == 2:
        padding = (padding,)  # one (lo, hi) pair for the one axis
    kernel_size, stride, dilation, output_padding = (
        (v,) if _is_scalar(v) else v
        for v in (kernel_size, stride, dilation, output_padding))
  if size is None or isinstance(size, (str, bytes)) or not hasattr(size, "__len__"):
    raise TypeError(f"size must be an int or a sequence of ints, got {checks.describe(size)}")
  n = len(size)
  if n == 0:
    raise ValueError("size must be an int or a non-empty sequence of ints, got ()")
  sizes = normalize_ints(size, n, "size")
  kernel_sizes = normalize_ints(kernel_size, n, "kernel_size")
  strides = normalize_ints(stride, n, "stride")
  dilations = normalize_ints(dilation, n, "dilation")
  output_paddings = normalize_ints(output_padding, n, "output_padding", minimum=0)
  pads = normalize_padding(padding, n)
  if pads == "SAME" and any(output_paddings):
    raise ValueError(f"output_padding must be 0 with padding='SAME', got {output_padding!r}")
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
        f"padding must be an int, per-axis ints or (lo, hi) pairs (the transposed output size "
        f"needs explicit padding; for 'SAME' it is size * stride), got {padding!r}"
    )
  scalar, sizes, pads, ks, ss, ds, ops = _spatial_args(
      size, padding, kernel_size, stride, dilation, output_padding)
  check_output_padding(ops, ss, ds, output_padding)
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


def check_output_padding(output_paddings, strides, dilations, given=None) -> None:
  """Raises unless every ``output_padding`` is smaller than the stride or the dilation.

  This is PyTorch's rule for ``ConvTranspose``: larger values would not give one of the
  input sizes the forward convolution maps to the transposed input.
  """
  for op, s, d in zip(output_paddings, strides, dilations):
    if op >= max(s, d):
      given = output_paddings if given is None else given
      raise ValueError(
          f"output_padding must be smaller than the stride ({tuple(strides)}) or the dilation "
          f"({tuple(dilations)}) along each axis, got {given!r}")


def normalize_floats(value, num_spatial: int, name: str) -> tuple[float, ...]:
  """A positive finite number or a sequence of ``num_spatial`` of them as a tuple of floats.

  A thin name for :func:`jaxup._src.checks.numbers`.

  >>> normalize_floats(2, 2, "scale")
  (2.0, 2.0)
  >>> normalize_floats((0.5, 1.5), 2, "scale")
  (0.5, 1.5)
  """
  return checks.numbers(value, num_spatial, name, positive=True)
