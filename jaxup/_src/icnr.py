"""ICNR: the kernel initialiser that makes sub-pixel convolution start as nearest upsampling.

A convolution with ``C * s**n`` output channels followed by :func:`jaxup.pixel_shuffle` (a
"sub-pixel convolution", Shi et al. 2016) gives each of the ``s**n`` output phases its own
sub-kernel. Initialised independently, the phases disagree and the output starts with a
checkerboard pattern. ICNR (Aitken et al. 2017, "Checkerboard artifact free sub-pixel
convolution: A note on sub-pixel convolution, resize convolution and convolution resize",
arXiv:1707.02937) draws one kernel with ``C`` output channels and copies it to every phase, so
that at initialisation the pair computes nearest-neighbour upsampling of a plain
convolution's output (to float rounding). Training then moves the phases apart only where that helps.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from jaxup._src import checks
from jaxup._src.pixel_shuffle import ORDERS

Initializer = Callable[..., jax.Array]


def icnr(
    factor: Union[int, Sequence[int]],
    initializer: Optional[Initializer] = None,
    *,
    order: str = "CRD",
    in_axis: int = -2,
    out_axis: int = -1,
) -> Initializer:
  r"""A kernel initialiser for a convolution followed by ``pixel_shuffle(·, factor)``.

  The returned ``init(key, shape, dtype=jnp.float32)`` builds a convolution kernel of
  ``shape``: by default HWIO, ``[*K, C_in, C_out]`` (Flax, Haiku and jaxup's convention) with
  ``n = len(shape) - 2`` spatial axes ``K`` (1-D, 2-D or 3-D), ``C_in`` input channels and
  ``C_out = C * prod(s)`` output channels, where ``s`` is ``factor`` per spatial axis and
  ``C`` the channels left after the shuffle. It draws one sub-kernel :math:`w` of shape
  ``[*K, C_in, C]`` from ``initializer`` and copies it to every sub-pixel phase ``p``:

  .. math::
    W[\ldots, c\,P + p] = w[\ldots, c] \quad (\text{CRD}), \qquad
    W[\ldots, p\,C + c] = w[\ldots, c] \quad (\text{DCR}), \qquad P = \textstyle\prod_i s_i,

  the two channel orders of :func:`jaxup.pixel_shuffle`. Then
  ``pixel_shuffle(conv(x, W), factor, order=order)`` equals
  ``upsample_nearest(conv(x, w), factor)`` (Aitken et al. 2017) up to float rounding (every
  phase has the same weights, but the wider convolution may sum in another order): the
  sub-pixel convolution starts free of checkerboard artefacts.

  The default ``initializer`` is LeCun normal,
  ``jax.nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal", in_axis=in_axis,
  out_axis=out_axis)``: the default of Flax's ``Conv``, so the kernel has the scale a plain
  Flax convolution would have (its fan-in, ``prod(K) * C_in``, is the same for ``w`` and
  ``W``). For ReLU networks pass ``jax.nn.initializers.he_normal()``, as fastai's
  ``icnr_init`` does with PyTorch's ``kaiming_normal_``.

  Framework use (each shown in the example below and tested):

  * Flax linen and nnx: ``nn.Conv(..., kernel_init=jaxup.icnr(2))``.
  * Haiku's initialisers take ``(shape, dtype)`` and draw their key from
    ``hk.next_rng_key()``: ``hk.Conv2D(..., w_init=lambda shape, dtype:
    jaxup.icnr(2)(hk.next_rng_key(), shape, dtype))``.
  * Equinox stores ``weight`` as ``[C_out, C_in, *K]`` (OIHW): build it with
    ``jaxup.icnr(2, in_axis=1, out_axis=0)`` and set it with ``eqx.tree_at``.
  * PyTorch ports (``weight`` ``[C_out, C_in, *K]``, ``pixel_shuffle`` in CRD order) use the
    same ``in_axis=1, out_axis=0``.

  Args:
    factor: the pixel-shuffle factor: a positive int for every spatial axis, or one per axis.
    initializer: a JAX-style initialiser ``init(key, shape, dtype)`` for the sub-kernel of
      shape ``shape`` with its output axis divided by ``prod(factor)``; ``None`` for LeCun
      normal (above).
    order: the pixel-shuffle channel order that follows the convolution: ``"CRD"`` (PyTorch,
      jaxup's default) or ``"DCR"`` (TensorFlow, ONNX's default), in any case.
    in_axis: the input-channel axis of the kernel (``-2`` for HWIO).
    out_axis: the output-channel axis of the kernel (``-1`` for HWIO).

  Returns:
    ``init(key, shape, dtype=jnp.float32) -> jax.Array``. It raises ``ValueError`` if ``shape``
    does not have 1 to 3 spatial axes, if the number of factors differs from them, or if the
    output channels are not divisible by ``prod(factor)``.

  Raises:
    TypeError: if ``factor`` is not an int or a sequence of ints, ``initializer`` is not
      callable, or ``order``, ``in_axis`` or ``out_axis`` has the wrong type.
    ValueError: if a factor is not positive, ``order`` is unknown, or ``in_axis`` equals
      ``out_axis``.

  Example:
    The convolution then shuffle starts as nearest upsampling of a plain convolution:

    >>> import jax, jax.numpy as jnp, jaxup
    >>> kernel = jaxup.icnr(2)(jax.random.key(0), (3, 3, 4, 8))  # C = 8 / 2**2 = 2
    >>> kernel.shape
    (3, 3, 4, 8)
    >>> bool(jnp.all(kernel[..., 0:1] == kernel[..., 0:4]))  # CRD: phases of channel 0
    True
    >>> x = jax.random.normal(jax.random.key(1), (1, 5, 5, 4))
    >>> shuffled = jaxup.pixel_shuffle(jaxup.conv(x, kernel, padding=1), 2)
    >>> plain = jaxup.conv(x, kernel[..., ::4], padding=1)  # the sub-kernel w
    >>> bool(jnp.all(shuffled == jaxup.upsample_nearest(plain, 2)))
    True
  """
  if initializer is not None and not callable(initializer):
    raise TypeError(
        f"initializer must be a callable init(key, shape, dtype) or None, got "
        f"{checks._describe(initializer)}")
  order = checks.choice(order, "order", ORDERS)
  in_axis = checks.integer(in_axis, "in_axis")
  out_axis = checks.integer(out_axis, "out_axis")
  if isinstance(factor, (str, bytes)) or factor is None:
    raise TypeError(f"factor must be an int or a sequence of ints, got {factor!r}")
  if checks._is_scalar(factor):
    checks.integer(factor, "factor", minimum=1)
  else:
    for f in factor:
      checks.integer(f, "factor", minimum=1)
  if initializer is None:
    initializer = jax.nn.initializers.variance_scaling(
        1.0, "fan_in", "truncated_normal", in_axis=in_axis, out_axis=out_axis)

  def init(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__") or (
        getattr(shape, "ndim", 1) == 0):
      raise TypeError(f"shape must be a sequence of ints, a convolution kernel's shape such as "
                      f"(3, 3, 16, 64), got {checks.describe(shape)}")
    shape = tuple(checks.integer(s, "shape", minimum=0) for s in shape)
    ndim = len(shape)
    if ndim not in (3, 4, 5):
      raise ValueError(
          f"shape must be a convolution kernel's shape with 1 to 3 spatial axes "
          f"(rank 3, 4 or 5), got {shape}")
    axes = tuple(a % ndim if -ndim <= a < ndim else None for a in (in_axis, out_axis))
    if None in axes or axes[0] == axes[1]:
      raise ValueError(
          f"in_axis and out_axis must be two different axes of a kernel of rank {ndim}, got "
          f"in_axis={in_axis}, out_axis={out_axis}")
    out = axes[1]
    factors = checks.ints(factor, ndim - 2, "factor")
    phases = math.prod(factors)
    if shape[out] % phases:
      raise ValueError(
          f"the kernel's output channels ({shape[out]}, axis {out} of shape {shape}) must be "
          f"divisible by the product of the factors {factors} ({phases})")
    sub_shape = shape[:out] + (shape[out] // phases,) + shape[out + 1:]
    sub = jnp.asarray(initializer(key, sub_shape, dtype))
    if sub.shape != sub_shape:
      raise ValueError(
          f"initializer must return an array of the requested shape {sub_shape}, got "
          f"{sub.shape}")
    if order == "CRD":  # output channel c * P + p: each channel repeated P times
      return jnp.repeat(sub, phases, axis=out)
    tiles = [1] * ndim  # DCR, output channel p * C + c: the channels tiled P times
    tiles[out] = phases
    return jnp.tile(sub, tiles)

  return init
