"""What the Flax, nnx and Haiku layers share: kernel shapes, bias, and PyTorch configurations."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from jaxup._src import geometry
from jaxup._src.conv import kernel_from_torch
from jaxup._src.layout import Layout, parse_layout


def conv_transpose_kernel_shape(
    x_shape: Sequence[int],
    layout: Optional[str],
    features: int,
    kernel_size: Union[int, Sequence[int]],
    groups: int,
) -> tuple[tuple[int, ...], Layout]:
  """The kernel shape ``[*K, features // groups, C_in]`` for an input of ``x_shape``."""
  lay = parse_layout(layout, len(x_shape))
  return (conv_transpose_kernel_shape_for(lay.num_spatial, lay.channels(x_shape), features,
                                          kernel_size, groups), lay)


def conv_transpose_kernel_shape_for(num_spatial: int, in_features: int, features: int,
                                    kernel_size, groups: int) -> tuple[int, ...]:
  """``[*K, features // groups, in_features]``, checking that ``groups`` divides both."""
  if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
    raise ValueError(f"groups={groups!r} must be a positive int")
  if features % groups:
    raise ValueError(f"groups={groups} must divide the output features ({features})")
  if in_features % groups:
    raise ValueError(f"groups={groups} must divide the input channels ({in_features})")
  kernel = geometry.normalize_ints(kernel_size, num_spatial, "kernel_size")
  return (*kernel, features // groups, in_features)


def add_bias(y: jax.Array, bias: jax.Array, lay: Layout) -> jax.Array:
  """``y + bias`` with ``bias`` ``[C]`` broadcast along the channel axis of ``lay``."""
  shape = [1] * y.ndim
  shape[lay.channel_axis] = bias.shape[0]
  return y + bias.reshape(shape).astype(y.dtype)


def default_kernel_init():
  """LeCun-normal scaled by the transposed convolution's input channels (the last axis)."""
  return jax.nn.initializers.variance_scaling(
      1.0, "fan_in", "truncated_normal", in_axis=-1, out_axis=-2)


def torch_conv_transpose_config(module: Any) -> dict:
  """The jaxup arguments and weights of a PyTorch ``ConvTranspose{1,2,3}d`` module.

  Returns:
    A dict with ``in_features``, ``features``, ``kernel_size``, ``stride``, ``padding``,
    ``output_padding``, ``dilation``, ``groups``, ``use_bias``, ``kernel`` (a jaxup kernel) and
    ``bias`` (an array or ``None``).

  Raises:
    TypeError: if ``module`` is not a PyTorch transposed convolution.
    ValueError: for a padding mode other than ``"zeros"``.
  """
  if not getattr(module, "transposed", False) or not hasattr(module, "weight"):
    raise TypeError(
        f"expected a torch.nn.ConvTranspose1d/2d/3d module, got {type(module).__name__}")
  if module.padding_mode != "zeros":
    raise ValueError(
        f"padding_mode={module.padding_mode!r} is not supported; transposed convolutions "
        "in PyTorch only use 'zeros'")
  bias = None
  if module.bias is not None:
    bias = jnp.asarray(module.bias.detach().cpu().numpy())
  return dict(
      in_features=module.in_channels,
      features=module.out_channels,
      kernel_size=tuple(module.kernel_size),
      stride=tuple(module.stride),
      padding=tuple(module.padding),
      output_padding=tuple(module.output_padding),
      dilation=tuple(module.dilation),
      groups=module.groups,
      use_bias=bias is not None,
      kernel=kernel_from_torch(module.weight),
      bias=bias,
  )
