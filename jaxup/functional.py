"""``torch.nn.functional``'s signatures and defaults over jaxup: ``import jaxup.functional as F``.

Porting ``F.x(...)`` from PyTorch becomes a change of import. Every function takes PyTorch's
arrays, batch and channels first (``[N, C, *S]``, or ``[C, *S]`` unbatched where PyTorch
allows it), PyTorch's argument names, order and defaults, and weights in PyTorch's order
(``conv2d``'s ``weight`` is ``[C_out, C_in // groups, kH, kW]``). Each is a thin layer over the
jaxup function named in its docstring; nothing is computed twice.

Arrays must be JAX or NumPy arrays; convert a ``torch.Tensor`` with
``jnp.asarray(t.detach().cpu().numpy())`` (weights with :func:`jaxup.kernel_from_torch` when
calling the jaxup functions directly).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxup._src import checks
from jaxup._src import layers
from jaxup._src import porting
from jaxup._src.conv import conv_transpose as _jaxup_conv_transpose
from jaxup._src.grid_sample import affine_grid as _affine_grid
from jaxup._src.grid_sample import grid_sample as _grid_sample
from jaxup._src.max_pool import max_pool as _jaxup_max_pool
from jaxup._src.max_unpool import max_unpool as _jaxup_max_unpool
from jaxup._src.pixel_shuffle import pixel_shuffle as _pixel_shuffle
from jaxup._src.pixel_shuffle import pixel_unshuffle as _pixel_unshuffle
from jaxup._src.resize import torch_interpolate as _torch_interpolate

__all__ = [
    "affine_grid", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "grid_sample", "interpolate", "max_pool1d", "max_pool2d", "max_pool3d", "max_unpool1d", "max_unpool2d",
    "max_unpool3d", "pixel_shuffle", "pixel_unshuffle",
]

IntOrSeq = Union[int, Sequence[int]]
_TORCH_HINT = "convert it with jnp.asarray(t.detach().cpu().numpy())"


def _input(x, n: int, name: str = "input") -> tuple[jax.Array, str]:
  """``x`` and its layout: ``NC`` + ``n`` spatial letters, or ``C`` + letters unbatched."""
  x = checks.array(x, name, torch_hint=_TORCH_HINT)
  spatial = "DHW"[3 - n:] if n > 1 else "W"
  if x.ndim == n + 2:
    return x, "NC" + spatial
  if x.ndim == n + 1:
    return x, "C" + spatial
  raise ValueError(f"{name} must have rank {n + 2} (batched) or {n + 1} (unbatched) for a "
                   f"{n}-D operation, got shape {tuple(x.shape)}")


def _weight(weight, n: int) -> jax.Array:
  """PyTorch's ``weight`` ``[out, in // groups, *K]`` (transposed: ``[in, out // groups,
  *K]``), checked and returned as given."""
  w = checks.array(weight, "weight", kind="floating", torch_hint=_TORCH_HINT)
  checks.rank(w, "weight", (n + 2,), "PyTorch's [out, in // groups, *K] order")
  return w


def _hwio(w: jax.Array) -> jax.Array:
  """A PyTorch weight in jaxup's kernel order ``[*K, in, out]``."""
  return jnp.moveaxis(w, (0, 1), (-1, -2))


def _check_channels(x, layout, w, groups, transposed: bool) -> int:
  """PyTorch's channel rules for ``input`` and ``weight``, named as PyTorch names them.

  Returns:
    The output channels (the length ``bias`` must have).
  """
  groups = checks.integer(groups, "groups", minimum=1)
  channels = x.shape[layout.index("C")]
  shape = tuple(w.shape)
  if transposed:
    if channels != shape[0]:
      raise ValueError(
          f"input has {channels} channels but weight of shape {shape} (PyTorch's [in, "
          f"out // groups, *K]) expects weight.shape[0] = {shape[0]}; input has shape "
          f"{tuple(x.shape)}")
    if shape[0] % groups:
      raise ValueError(f"groups ({groups}) must divide weight.shape[0] (the input channels, "
                       f"{shape[0]}) of weight of shape {shape}")
    return shape[1] * groups
  if shape[0] % groups:
    raise ValueError(f"groups ({groups}) must divide weight.shape[0] (the output channels, "
                     f"{shape[0]}) of weight of shape {shape}")
  if channels != shape[1] * groups:
    raise ValueError(
        f"input has {channels} channels but weight of shape {shape} (PyTorch's [out, "
        f"in // groups, *K]) with groups={groups} expects weight.shape[1] * groups = "
        f"{shape[1] * groups}; input has shape {tuple(x.shape)}")
  return shape[0]


def _check_spatial(x, layout, name="input"):
  """Raises unless every spatial axis of ``x`` is non-empty (PyTorch refuses empty ones)."""
  for axis, letter in enumerate(layout):
    if letter not in "NC" and x.shape[axis] == 0:
      raise ValueError(f"{name} must have a non-empty spatial axis {letter!r} (axis {axis}) as "
                       f"in PyTorch, got shape {tuple(x.shape)}")


def _with_bias(y, bias, layout, out_channels, weight):
  if bias is None:
    return y
  bias = checks.array(bias, "bias", kind="floating", torch_hint=_TORCH_HINT)
  if bias.shape != (out_channels,):
    raise ValueError(f"bias must have shape ({out_channels},), one value per output channel "
                     f"of weight of shape {tuple(weight.shape)}, got shape {tuple(bias.shape)}")
  return layers.add_bias(y, bias, layers.parse_layout(layout, y.ndim))


def _padding(padding, stride, n):
  """PyTorch's conv ``padding``: ints, or ``"same"`` / ``"valid"`` (``"same"`` only unstrided)."""
  if not isinstance(padding, str):
    return padding
  padding = checks.choice(padding, "padding", ("same", "valid"))
  if padding == "same" and any(s != 1 for s in checks.ints(stride, n, "stride")):
    raise ValueError(f"padding='same' needs stride=1, as in PyTorch (it is not defined for "
                     f"strided convolutions), got stride={stride!r}; give the padding as ints")
  return padding.upper()


def _conv(n, input, weight, bias, stride, padding, dilation, groups):
  x, layout = _input(input, n)
  w = _weight(weight, n)
  out_channels = _check_channels(x, layout, w, groups, transposed=False)
  _check_spatial(x, layout)
  y = layers.padded_conv(x, _hwio(w), stride=stride, padding=_padding(padding, stride, n),
                         dilation=dilation, groups=groups, padding_mode="zeros",
                         layout=layout, precision=None)
  return _with_bias(y, bias, layout, out_channels, w)


def conv1d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
           stride: IntOrSeq = 1, padding: Union[str, IntOrSeq] = 0, dilation: IntOrSeq = 1,
           groups: int = 1) -> jax.Array:
  """``torch.nn.functional.conv1d`` over :func:`jaxup.conv`: ``[N, C_in, W] -> [N, C_out, W']``.

  ``weight`` is ``[C_out, C_in // groups, K]``, ``bias`` ``[C_out]``; ``padding`` an int, a
  tuple, ``"same"`` or ``"valid"``.

  Example:
    >>> import jax.numpy as jnp
    >>> conv1d(jnp.ones((1, 2, 5)), jnp.ones((3, 2, 3)), padding=1)[0, 0].tolist()
    [4.0, 6.0, 6.0, 6.0, 4.0]
  """
  return _conv(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
           stride: IntOrSeq = 1, padding: Union[str, IntOrSeq] = 0, dilation: IntOrSeq = 1,
           groups: int = 1) -> jax.Array:
  """``torch.nn.functional.conv2d`` over :func:`jaxup.conv`: ``[N, C_in, H, W] -> [N, C_out,
  H', W']`` with ``weight`` ``[C_out, C_in // groups, kH, kW]`` and ``bias`` ``[C_out]``.

  Example:
    >>> import jax.numpy as jnp
    >>> conv2d(jnp.ones((1, 3, 8, 8)), jnp.ones((4, 3, 3, 3)), stride=2, padding=1).shape
    (1, 4, 4, 4)
  """
  return _conv(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
           stride: IntOrSeq = 1, padding: Union[str, IntOrSeq] = 0, dilation: IntOrSeq = 1,
           groups: int = 1) -> jax.Array:
  """``torch.nn.functional.conv3d`` over :func:`jaxup.conv`, ``weight`` ``[C_out, C_in //
  groups, kD, kH, kW]``.

  Example:
    >>> import jax.numpy as jnp
    >>> conv3d(jnp.ones((1, 2, 4, 4, 4)), jnp.ones((3, 2, 3, 3, 3)), padding="same").shape
    (1, 3, 4, 4, 4)
  """
  return _conv(3, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose(n, input, weight, bias, stride, padding, output_padding, groups, dilation):
  x, layout = _input(input, n)
  if isinstance(padding, str):
    raise TypeError(f"padding must be an int or a tuple of {n} ints for conv_transpose{n}d, as "
                    f"in PyTorch (which takes no 'same' or 'valid' here), got {padding!r}; "
                    "jaxup.conv_transpose(..., padding='SAME') gives size * stride")
  w = _weight(weight, n)
  out_channels = _check_channels(x, layout, w, groups, transposed=True)
  _check_spatial(x, layout)
  y = _jaxup_conv_transpose(x, _hwio(w), stride=stride, padding=padding,
                            output_padding=output_padding, dilation=dilation, groups=groups,
                            layout=layout)
  return _with_bias(y, bias, layout, out_channels, w)


def conv_transpose1d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: IntOrSeq = 1, padding: IntOrSeq = 0, output_padding: IntOrSeq = 0,
                     groups: int = 1, dilation: IntOrSeq = 1) -> jax.Array:
  """``torch.nn.functional.conv_transpose1d`` over :func:`jaxup.conv_transpose`.

  ``weight`` is ``[C_in, C_out // groups, K]`` as in PyTorch; note PyTorch's argument order,
  ``groups`` before ``dilation``.

  Example:
    >>> import jax.numpy as jnp
    >>> conv_transpose1d(jnp.ones((1, 2, 4)), jnp.ones((2, 3, 4)), stride=2, padding=1).shape
    (1, 3, 8)
  """
  return _conv_transpose(1, input, weight, bias, stride, padding, output_padding, groups,
                         dilation)


def conv_transpose2d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: IntOrSeq = 1, padding: IntOrSeq = 0, output_padding: IntOrSeq = 0,
                     groups: int = 1, dilation: IntOrSeq = 1) -> jax.Array:
  """``torch.nn.functional.conv_transpose2d`` over :func:`jaxup.conv_transpose`, ``weight``
  ``[C_in, C_out // groups, kH, kW]``.

  Example:
    >>> import jax.numpy as jnp
    >>> x = jnp.ones((1, 4, 5, 5))
    >>> conv_transpose2d(x, jnp.ones((4, 2, 3, 3)), stride=2, padding=1, output_padding=1).shape
    (1, 2, 10, 10)
  """
  return _conv_transpose(2, input, weight, bias, stride, padding, output_padding, groups,
                         dilation)


def conv_transpose3d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: IntOrSeq = 1, padding: IntOrSeq = 0, output_padding: IntOrSeq = 0,
                     groups: int = 1, dilation: IntOrSeq = 1) -> jax.Array:
  """``torch.nn.functional.conv_transpose3d`` over :func:`jaxup.conv_transpose`, ``weight``
  ``[C_in, C_out // groups, kD, kH, kW]``.

  Example:
    >>> import jax.numpy as jnp
    >>> conv_transpose3d(jnp.ones((1, 2, 2, 2, 2)), jnp.ones((2, 1, 2, 2, 2)), stride=2).shape
    (1, 1, 4, 4, 4)
  """
  return _conv_transpose(3, input, weight, bias, stride, padding, output_padding, groups,
                         dilation)


def interpolate(input: ArrayLike, size: Optional[IntOrSeq] = None,
                scale_factor: Optional[Union[float, Sequence[float]]] = None,
                mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None,
                antialias: bool = False) -> jax.Array:
  """``torch.nn.functional.interpolate`` over :func:`jaxup.resize`, PyTorch's defaults.

  ``[N, C, *S] -> [N, C, *S_out]`` with 1 to 3 spatial axes. ``mode`` defaults to
  ``"nearest"`` as in PyTorch; ``"linear"``, ``"bilinear"``, ``"bicubic"`` and ``"trilinear"``
  need 3-, 4-, 4- and 5-D inputs as there. ``align_corners`` (``None`` is ``False``) applies
  to the linear and cubic modes only. ``antialias=True`` (``bilinear``, ``bicubic``) is
  jaxup's ``antialias=True, exclude_outside=True``, and for ``bicubic`` ``cubic_coeff_a=-0.5``
  (plain ``bicubic`` uses -0.75). ``recompute_scale_factor=True`` is ``recompute_scale=True``.
  ``"area"`` is adaptive average pooling, as in PyTorch. A uint8 input to ``"bilinear"`` or
  ``"bicubic"`` is computed as PyTorch's fixed-point kernel computes it (rounded and saturated
  per pass, bit for bit); other integer inputs interpolate only in the nearest modes, as in
  PyTorch (see ``docs/techniques/resize.md``).

  Example:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([[[1.0, 2.0]]])
    >>> interpolate(x, scale_factor=2).tolist()  # nearest, as PyTorch
    [[[1.0, 1.0, 2.0, 2.0]]]
    >>> interpolate(x, size=3, mode="linear", align_corners=True).tolist()
    [[[1.0, 1.5, 2.0]]]
  """
  x = checks.array(input, "input", kind="any", torch_hint=_TORCH_HINT)
  if x.ndim not in (3, 4, 5):
    raise ValueError(f"input must have rank 3, 4 or 5 ([N, C, *spatial]) as in PyTorch, got "
                     f"shape {tuple(x.shape)}")
  options = porting.interpolate_options(size, scale_factor, mode, align_corners,
                                        recompute_scale_factor, antialias, x.ndim)
  return _torch_interpolate(x, layout=porting.channels_first_layout(x.ndim - 2), **options)


def _pool_stride(stride, kernel_sizes, n):
  """PyTorch's pooling ``stride``: ``None`` (or an empty sequence) is ``kernel_size``."""
  if stride is None or (hasattr(stride, "__len__") and not isinstance(stride, str)
                        and len(stride) == 0):
    return kernel_sizes
  return checks.ints(stride, n, "stride")


def _max_pool(n, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
  x, layout = _input(input, n)
  # PyTorch refuses an empty channel or spatial axis (only the batch may be empty).
  for axis, letter in enumerate(layout):
    if letter != "N" and x.shape[axis] == 0:
      raise ValueError(f"input must have non-empty channel and spatial axes for max_pool{n}d "
                       f"as in PyTorch (only the batch may be empty), got shape "
                       f"{tuple(x.shape)}")
  kernel_sizes = checks.ints(kernel_size, n, "kernel_size")
  strides = _pool_stride(stride, kernel_sizes, n)
  pads = checks.ints(padding, n, "padding", minimum=0)
  dilations = checks.ints(dilation, n, "dilation")
  for p, k in zip(pads, kernel_sizes):
    if p > k // 2:
      raise ValueError(f"padding must be at most half of kernel_size (padding <= kernel_size "
                       f"// 2, as in PyTorch), got padding={padding!r} and "
                       f"kernel_size={kernel_size!r}")
  ceil_mode = checks.boolean(ceil_mode, "ceil_mode")
  for size, k, s, p, d in zip(x.shape[-n:], kernel_sizes, strides, pads, dilations):
    if size + 2 * p < d * (k - 1) + 1:
      raise ValueError(
          f"kernel_size={kernel_size!r} with dilation={dilation!r} spans {d * (k - 1) + 1}, more "
          f"than the padded input ({size} + 2 * {p}) of input of shape {tuple(x.shape)}: the "
          "output would be empty (PyTorch refuses it too)")
  return _jaxup_max_pool(x, kernel_sizes, stride=strides, padding=pads, dilation=dilations,
                         ceil_mode=ceil_mode, return_indices=return_indices, layout=layout)


def max_pool1d(input: ArrayLike, kernel_size: IntOrSeq, stride: Optional[IntOrSeq] = None,
               padding: IntOrSeq = 0, dilation: IntOrSeq = 1, ceil_mode: bool = False,
               return_indices: bool = False):
  """``torch.nn.functional.max_pool1d`` over :func:`jaxup.max_pool`; with
  ``return_indices=True`` it returns ``(values, indices)``, PyTorch's flat per-plane indices.

  Example:
    >>> import jax.numpy as jnp
    >>> max_pool1d(jnp.array([[[1.0, 3.0, 2.0, 0.0]]]), 2, return_indices=True)[1].tolist()
    [[[1, 2]]]
  """
  return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: ArrayLike, kernel_size: IntOrSeq, stride: Optional[IntOrSeq] = None,
               padding: IntOrSeq = 0, dilation: IntOrSeq = 1, ceil_mode: bool = False,
               return_indices: bool = False):
  """``torch.nn.functional.max_pool2d`` over :func:`jaxup.max_pool`.

  Example:
    >>> import jax.numpy as jnp
    >>> max_pool2d(jnp.ones((1, 3, 8, 8)), 2).shape
    (1, 3, 4, 4)
  """
  return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input: ArrayLike, kernel_size: IntOrSeq, stride: Optional[IntOrSeq] = None,
               padding: IntOrSeq = 0, dilation: IntOrSeq = 1, ceil_mode: bool = False,
               return_indices: bool = False):
  """``torch.nn.functional.max_pool3d`` over :func:`jaxup.max_pool`.

  Example:
    >>> import jax.numpy as jnp
    >>> max_pool3d(jnp.ones((1, 3, 4, 4, 4)), 2).shape
    (1, 3, 2, 2, 2)
  """
  return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _max_unpool(n, input, indices, kernel_size, stride, padding, output_size):
  x, layout = _input(input, n)
  if indices is None:
    raise TypeError("indices must be the indices max_pool returned: call "
                    f"max_pool{n}d(..., return_indices=True)")
  indices = checks.array(indices, "indices", kind="integer", torch_hint=_TORCH_HINT)
  if stride is not None and hasattr(stride, "__len__") and len(stride) == 0:
    stride = None  # PyTorch's spelling of the default, kernel_size
  return _jaxup_max_unpool(x, indices, kernel_size, stride=stride, padding=padding,
                     output_size=output_size, layout=layout)


def max_unpool1d(input: ArrayLike, indices: ArrayLike, kernel_size: IntOrSeq,
                 stride: Optional[IntOrSeq] = None, padding: IntOrSeq = 0,
                 output_size: Optional[Sequence[int]] = None) -> jax.Array:
  """``torch.nn.functional.max_unpool1d`` over :func:`jaxup.max_unpool`.

  Example:
    >>> import jax.numpy as jnp
    >>> values, indices = max_pool1d(jnp.array([[[1.0, 3.0, 2.0, 0.0]]]), 2, return_indices=True)
    >>> max_unpool1d(values, indices, 2).tolist()
    [[[0.0, 3.0, 2.0, 0.0]]]
  """
  return _max_unpool(1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input: ArrayLike, indices: ArrayLike, kernel_size: IntOrSeq,
                 stride: Optional[IntOrSeq] = None, padding: IntOrSeq = 0,
                 output_size: Optional[Sequence[int]] = None) -> jax.Array:
  """``torch.nn.functional.max_unpool2d`` over :func:`jaxup.max_unpool`.

  Example:
    >>> import jax.numpy as jnp
    >>> values, indices = max_pool2d(jnp.ones((1, 3, 8, 8)), 2, return_indices=True)
    >>> max_unpool2d(values, indices, 2).shape
    (1, 3, 8, 8)
  """
  return _max_unpool(2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: ArrayLike, indices: ArrayLike, kernel_size: IntOrSeq,
                 stride: Optional[IntOrSeq] = None, padding: IntOrSeq = 0,
                 output_size: Optional[Sequence[int]] = None) -> jax.Array:
  """``torch.nn.functional.max_unpool3d`` over :func:`jaxup.max_unpool`.

  Example:
    >>> import jax.numpy as jnp
    >>> values, indices = max_pool3d(jnp.ones((1, 1, 4, 4, 4)), 2, return_indices=True)
    >>> max_unpool3d(values, indices, 2).shape
    (1, 1, 4, 4, 4)
  """
  return _max_unpool(3, input, indices, kernel_size, stride, padding, output_size)


def _leading(x, name):
  """``x`` as ``[B, C, H, W]`` and its leading shape (PyTorch takes any ``[*, C, H, W]``)."""
  x = checks.array(x, name, kind="any", torch_hint=_TORCH_HINT)
  if x.ndim < 3:
    raise ValueError(f"{name} must have rank 3 or more ([*, C, H, W]), got shape "
                     f"{tuple(x.shape)}")
  lead = x.shape[:-3]
  return x.reshape(math.prod(lead), *x.shape[-3:]), lead  # -1 cannot be inferred when empty


def pixel_shuffle(input: ArrayLike, upscale_factor: int) -> jax.Array:
  """``torch.nn.functional.pixel_shuffle`` over :func:`jaxup.pixel_shuffle`:
  ``[*, C r^2, H, W] -> [*, C, H r, W r]``.

  Example:
    >>> import jax.numpy as jnp
    >>> pixel_shuffle(jnp.ones((1, 8, 3, 3)), 2).shape
    (1, 2, 6, 6)
  """
  x, lead = _leading(input, "input")
  y = _pixel_shuffle(x, upscale_factor, layout="NCHW")
  return y.reshape(*lead, *y.shape[1:])


def pixel_unshuffle(input: ArrayLike, downscale_factor: int) -> jax.Array:
  """``torch.nn.functional.pixel_unshuffle`` over :func:`jaxup.pixel_unshuffle`:
  ``[*, C, H r, W r] -> [*, C r^2, H, W]``.

  Example:
    >>> import jax.numpy as jnp
    >>> pixel_unshuffle(jnp.ones((1, 2, 6, 6)), 2).shape
    (1, 8, 3, 3)
  """
  x, lead = _leading(input, "input")
  y = _pixel_unshuffle(x, downscale_factor, layout="NCHW")
  return y.reshape(*lead, *y.shape[1:])


def grid_sample(input: ArrayLike, grid: ArrayLike, mode: str = "bilinear",
                padding_mode: str = "zeros", align_corners: Optional[bool] = None) -> jax.Array:
  """``torch.nn.functional.grid_sample`` over :func:`jaxup.grid_sample`: ``input`` ``[N, C,
  H_in, W_in]`` and ``grid`` ``[N, H_out, W_out, 2]`` give ``[N, C, H_out, W_out]``, or the
  5-D (volumetric) forms; ``align_corners=None`` is ``False``.

  As in PyTorch, only 4-D and 5-D inputs are taken and ``mode="bicubic"`` is 4-D only.

  Example:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    >>> grid_sample(x, jnp.zeros((1, 1, 1, 2)), align_corners=True).tolist()
    [[[[2.5]]]]
  """
  x = checks.array(input, "input", kind="floating", torch_hint=_TORCH_HINT)
  grid = checks.array(grid, "grid", kind="floating", torch_hint=_TORCH_HINT)
  if x.ndim not in (4, 5):
    raise ValueError(f"input must have rank 4 ([N, C, H, W]) or 5 ([N, C, D, H, W]) as in "
                     f"PyTorch, got shape {tuple(x.shape)}")
  if grid.ndim != x.ndim:
    raise ValueError(f"grid must have the rank of input ({x.ndim}), [N, *S_out, {x.ndim - 2}], "
                     f"got shape {tuple(grid.shape)} for input of shape {tuple(x.shape)}")
  if x.ndim == 5 and isinstance(mode, str) and mode.lower() == "bicubic":
    raise ValueError(f"mode='bicubic' needs a 4-D input as in PyTorch, got shape "
                     f"{tuple(x.shape)}; jaxup.grid_sample samples 3-D volumes bicubically")
  if x.shape[0] != grid.shape[0] or grid.shape[-1] != x.ndim - 2:
    raise ValueError(f"grid must have shape [{x.shape[0]}, *S_out, {x.ndim - 2}] for input of "
                     f"shape {tuple(x.shape)}, got shape {tuple(grid.shape)}")
  align_corners = False if align_corners is None else align_corners
  return _grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners,
                      layout=porting.channels_first_layout(x.ndim - 2))


def affine_grid(theta: ArrayLike, size: Sequence[int],
                align_corners: Optional[bool] = None) -> jax.Array:
  """``torch.nn.functional.affine_grid`` over :func:`jaxup.affine_grid`: ``theta`` ``[N, 2,
  3]`` and ``size`` ``(N, C, H, W)`` give the grid ``[N, H, W, 2]`` (``[N, 3, 4]`` and
  ``(N, C, D, H, W)`` give ``[N, D, H, W, 3]``); ``align_corners=None`` is ``False``.

  Example:
    >>> import jax.numpy as jnp
    >>> theta = jnp.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    >>> affine_grid(theta, (1, 1, 1, 2))[0, 0, :, 0].tolist()
    [-0.5, 0.5]
  """
  theta = checks.array(theta, "theta", kind="floating", torch_hint=_TORCH_HINT)
  if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) not in (4, 5):
    raise ValueError(f"size must be (N, C, H, W) or (N, C, D, H, W) as in PyTorch, got "
                     f"{checks.describe(size)}")
  align_corners = False if align_corners is None else align_corners
  return _affine_grid(theta, tuple(size), align_corners=align_corners)
