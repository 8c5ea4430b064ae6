"""What the Flax, nnx, Haiku and Equinox layers share: kernel shapes, bias, padding modes,
PyTorch configurations, and the stateless layers, which need no framework at all."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import textwrap
from typing import Any, Callable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp

from jaxup._src import checks
from jaxup._src import geometry
from jaxup._src.conv import conv, conv_transpose
from jaxup._src.lowering import LOWERINGS
from jaxup._src.layout import Layout, parse_layout, spatial_ranks
from jaxup._src.bed_of_nails import bed_of_nails
from jaxup._src.max_pool import max_pool
from jaxup._src.max_unpool import max_unpool
from jaxup._src.nearest import upsample_nearest
from jaxup._src.pixel_shuffle import pixel_shuffle, pixel_unshuffle
from jaxup._src.resize import resize
from jaxup._src.upsample_conv import upsample_conv


def import_framework(name: str, module: str, extra: str) -> Any:
  """``importlib.import_module(name)`` for ``jaxup.<module>``, or the error that names the
  ``pip install "jaxup[<extra>]"`` to run (the frameworks are optional dependencies)."""
  try:
    return importlib.import_module(name)
  except ImportError as e:
    raise missing_framework(module, extra, e) from e


def missing_framework(module: str, extra: str, error: ImportError) -> ImportError:
  """The error for ``import jaxup.<module>`` without its framework installed, with the fix."""
  note = ""
  if extra == "haiku":
    note = (" Haiku's package is dm-haiku (`pip install dm-haiku`); the PyPI project named "
            "haiku is unrelated.")
  needed = (error.name or extra).split(".")[0]
  return ImportError(f"jaxup.{module} needs {needed}, which is not installed: "
                     f'pip install "jaxup[{extra}]".{note}')


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_JNP_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def check_padding_mode(padding_mode: str) -> str:
  """PyTorch's ``padding_mode``, one of :data:`PADDING_MODES` (any case)."""
  return checks.choice(padding_mode, "padding_mode", PADDING_MODES)


def padded_conv(x: jax.Array, kernel: jax.Array, *, stride, padding, dilation, groups,
                padding_mode: str, layout: Optional[str], precision) -> jax.Array:
  """:func:`jaxup.conv` with PyTorch's ``padding_mode``.

  ``"zeros"`` is the convolution's own padding. The other modes pad ``x`` first, as PyTorch
  does, with ``jnp.pad`` (``reflect``: mirrored without the edge, ``replicate``: the edge value,
  ``circular``: wrapped around), then convolve with no padding. ``"same"`` pads
  ``dilation * (K - 1)`` in total per axis, the odd one on the high side (PyTorch's rule).
  """
  mode = check_padding_mode(padding_mode)
  if mode == "zeros":
    return conv(x, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                layout=layout, precision=precision)
  x = checks.array(x, "x")
  lay = parse_layout(layout, x.ndim, num_spatial=(kernel.ndim - 2,))
  n = lay.num_spatial
  strides = checks.ints(stride, n, "stride")
  dilations = checks.ints(dilation, n, "dilation")
  pairs = geometry.resolve_padding(
      geometry.normalize_padding(padding, n), lay.spatial_shape(x.shape),
      kernel.shape[:n], strides, dilations)
  width = [(0, 0)] * x.ndim
  for axis, pair in zip(lay.spatial_axes, pairs):
    width[axis] = tuple(pair)
  x = jnp.pad(x, width, mode=_JNP_PAD_MODES[mode])
  return conv(x, kernel, stride=strides, padding=0, dilation=dilations, groups=groups,
              layout=layout, precision=precision)


def add_bias(y: jax.Array, bias: jax.Array, lay: Layout) -> jax.Array:
  """``y + bias`` with ``bias`` ``[C]`` broadcast along the channel axis of ``lay``."""
  shape = [1] * y.ndim
  shape[lay.channel_axis] = bias.shape[0]
  return y + bias.reshape(shape).astype(y.dtype)


def default_kernel_init():
  """LeCun-normal scaled by the transposed convolution's input channels (the last axis)."""
  return jax.nn.initializers.variance_scaling(
      1.0, "fan_in", "truncated_normal", in_axis=-1, out_axis=-2)


def default_conv_kernel_init():
  """LeCun-normal over a convolution kernel ``[*K, C_in // groups, C_out]`` (Flax's default)."""
  return jax.nn.initializers.variance_scaling(
      1.0, "fan_in", "truncated_normal", in_axis=-2, out_axis=-1)


# ---------------------------------------------------------------------------------------------
# The layers with parameters. One description per layer kind (its arguments with their checks
# and documentation, its kernel shape and initialiser, its apply function), which the modules of
# every framework follow; a framework adds only parameter creation, state and its own names.


def _sized(value) -> bool:
  """Whether ``value`` is a sequence (one entry per spatial axis) rather than one number."""
  return (hasattr(value, "__len__") and not isinstance(value, (str, bytes))
          and getattr(value, "ndim", 1) != 0)


def _hashable(value):
  """Nested lists as tuples, so that the options hash (Equinox keeps them as static fields)."""
  if isinstance(value, (list, tuple)):
    return tuple(_hashable(v) for v in value)
  return value


def _per_axis(minimum: int) -> Callable:
  def check(value, name, num_spatial):
    if num_spatial is None and (value is None or isinstance(value, (str, bytes))):
      return value  # the message names the spatial rank: checked when an input sets it
    n = num_spatial if num_spatial is not None else (len(value) if _sized(value) else 1)
    result = checks.ints(value, n, name, minimum=minimum)
    return result if (num_spatial is not None or _sized(value)) else result[0]
  return check


def _padding(value, name, num_spatial):
  n = num_spatial if num_spatial is not None else (len(value) if _sized(value) else 1)
  geometry.normalize_padding(value, n, name)
  return _hashable(value)


def check_layout(layout, name: str = "layout", num_spatial: Optional[int] = None):
  """``None`` or a layout string; parsed in full where the spatial rank is known (a layer whose
  ``kernel_size`` tuple sets it), otherwise when the input arrives."""
  if layout is None:
    return None
  if not isinstance(layout, str):
    raise TypeError(f"{name} must be a string such as 'NHWC' or None, got "
                    f"{checks.describe(layout)}")
  if num_spatial is None:
    return layout
  return parse_layout(layout, len(layout), name=name, num_spatial=(num_spatial,)).spec


def _fused(value, name, num_spatial):
  if isinstance(value, str):
    return checks.choice(value, name, ("auto",))
  return checks.boolean(value, name)


@dataclasses.dataclass(frozen=True)
class Option:
  """An argument of a layer: its default (``REQUIRED`` for none), its check and its text.

  ``check(value, name, num_spatial)`` returns the value the layer keeps or raises naming
  ``name`` (the framework's spelling of the argument); ``num_spatial`` is ``None`` while the
  spatial rank is not known.
  """

  name: str
  default: Any
  doc: str
  check: Optional[Callable] = None


REQUIRED = inspect.Parameter.empty

_FEATURES = Option("features", REQUIRED, "output channels.",
                   lambda v, name, n: checks.integer(v, name, minimum=1))
_IN_FEATURES = Option("in_features", REQUIRED, "input channels.",
                      lambda v, name, n: checks.integer(v, name, minimum=1))
_KERNEL_SIZE = Option("kernel_size", REQUIRED, "an int or one per spatial axis.", _per_axis(1))
_STRIDE = Option("stride", 1, "an int or one per spatial axis.", _per_axis(1))
_DILATION = Option("dilation", 1, "the kernel's dilation, an int or one per spatial axis.",
                   _per_axis(1))
_GROUPS = Option("groups", 1, "the number of channel groups; it divides both channel counts.",
                 lambda v, name, n: checks.integer(v, name, minimum=1))
_PADDING = Option("padding", 0, "an int, one per axis, ``(lo, hi)`` pairs, ``\"same\"`` or "
                  "``\"valid\"`` (any case).", _padding)
_USE_BIAS = Option("use_bias", True, "whether to add a bias of shape ``[{features}]``.",
                   lambda v, name, n: checks.boolean(v, name))
_LAYOUT = Option("layout", None, "the input layout (:func:`jaxup.parse_layout`); ``None`` is "
                 "channels-last with a batch axis.", lambda v, name, n: check_layout(v, name, n))
_PRECISION = Option("precision", None, "passed to ``lax.conv_general_dilated``.",
                    lambda v, name, n: checks.precision(v, name))


@dataclasses.dataclass(frozen=True)
class Host:
  """What a framework adds to a layer description: its names and its own arguments.

  Attributes:
    names: the framework's spelling of jaxup's argument names (Haiku's ``output_channels``).
    eager: parameters are made at construction (nnx, Equinox): ``in_features`` is an argument
      and ``kernel_size`` a tuple whose length sets the spatial rank.
    keyword_only: whether the options after the positional ones are keyword-only.
    dtypes: the framework's dtype arguments, after ``layout``.
    inits: its initialiser arguments, after every option (defaults filled in per layer kind).
    trailing: its last arguments (``rngs``, ``key``, ``name``).
    section: the docstring section of the arguments (``Attributes`` for dataclass modules).
  """

  names: Mapping[str, str]
  eager: bool
  keyword_only: bool
  dtypes: tuple[Option, ...] = ()
  inits: tuple[Option, ...] = ()
  trailing: tuple[Option, ...] = ()
  section: str = "Args"

  def name(self, canonical: str) -> str:
    return self.names.get(canonical, canonical)


# Other libraries' names for the options (Flax's, Haiku's, PyTorch's), answered with jaxup's.
FOREIGN_NAMES = {
    "strides": "stride", "kernel_dilation": "dilation", "rhs_dilation": "dilation",
    "rate": "dilation", "feature_group_count": "groups", "out_channels": "features",
    "out_features": "features", "output_channels": "features", "features": "features",
    "in_channels": "in_features", "bias": "use_bias", "with_bias": "use_bias",
    "use_bias": "use_bias", "kernel_init": "kernel_init", "w_init": "kernel_init",
    "bias_init": "bias_init", "b_init": "bias_init", "scale_factor": "factor",
}


@dataclasses.dataclass(frozen=True)
class LayerSpec:
  """One layer kind with parameters, as every framework's module of that name follows it.

  Attributes:
    name: the class name (``"Conv"``).
    doc: the docstring's summary and shapes; ``{features}``, ``{kernel}`` and ``{bias}`` are
      the framework's names for the output channels and the parameters.
    positional: the required arguments after ``features`` and ``kernel_size``.
    options: the keyword options before ``use_bias`` and ``layout``.
    tail: the options after ``precision``.
    transpose: the kernel is ``[*K, features // groups, C_in]`` (the kernel of the convolution
      it transposes) rather than ``[*K, C_in // groups, features]``.
    function: ``function(x, kernel, options, *call_args, **call_kwargs)``, without the bias.
    call_doc: the docstring of ``__call__``.
  """

  name: str
  doc: str
  positional: tuple[Option, ...]
  options: tuple[Option, ...]
  tail: tuple[Option, ...]
  transpose: bool
  function: Callable
  call_doc: str = "Applies the layer."

  # ----- arguments

  def arguments(self, host: Host) -> tuple[Option, ...]:
    """Every argument in the framework's order, under jaxup's names."""
    head = ((_IN_FEATURES,) if host.eager else ()) + (_FEATURES, _KERNEL_SIZE)
    return (head + self.positional + self.options + (_USE_BIAS, _LAYOUT) + host.dtypes
            + (_PRECISION,) + self.tail + host.inits + host.trailing)

  def default_kernel_init(self) -> Callable:
    """LeCun-normal over the kernel's input channels (Flax's default)."""
    return default_kernel_init() if self.transpose else default_conv_kernel_init()

  def signature(self, host: Host) -> inspect.Signature:
    """The constructor's signature in the framework's names."""
    required = len(self.positional) + (3 if host.eager else 2)
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for i, o in enumerate(self.arguments(host)):
      kind = (inspect.Parameter.KEYWORD_ONLY if host.keyword_only and i >= required
              else inspect.Parameter.POSITIONAL_OR_KEYWORD)
      params.append(inspect.Parameter(host.name(o.name), kind, default=o.default))
    return inspect.Signature(params)

  def init_function(self, host: Host, init: Callable) -> Callable:
    """``init(self, *args, **kwargs)`` as a class's ``__init__`` with :meth:`signature`, so
    that ``help`` and ``inspect.signature`` show the framework's arguments."""

    def __init__(self, *args, **kwargs):
      init(self, *args, **kwargs)

    __init__.__signature__ = self.signature(host)
    __init__.__qualname__ = f"{self.name}.__init__"
    return __init__

  def check(self, host: Host, values: Mapping[str, Any]) -> dict:
    """The options, checked once for every framework: ``values`` in the framework's names,
    the result in jaxup's, as the layer keeps them (hashable)."""
    num_spatial = None
    if host.eager:
      num_spatial = spatial_rank(values[host.name("kernel_size")])
    out = {}
    for o in self.arguments(host):
      value = values[host.name(o.name)]
      out[o.name] = value if o.check is None else o.check(value, host.name(o.name), num_spatial)
    groups = out["groups"]
    if out["features"] % groups:
      raise ValueError(f"{host.name('groups')} must divide the output features "
                       f"({out['features']}), got {groups}")
    if "in_features" in out and out["in_features"] % groups:
      raise ValueError(f"{host.name('groups')} must divide the input channels "
                       f"({out['in_features']}), got {groups}")
    return out

  def refuse_foreign(self, host: Host, kwargs: Mapping[str, Any]) -> None:
    """Raises for another library's name of an option (Flax's ``strides``, Haiku's ``rate``,
    PyTorch's ``out_channels``), naming the one this layer takes."""
    signature = self.signature(host)
    for name, value in kwargs.items():
      canonical = FOREIGN_NAMES.get(name)
      ours = None if canonical is None else host.name(canonical)
      if name not in signature.parameters and ours in signature.parameters:
        raise TypeError(f"{self.name} got {name}={checks.describe(value)}, which this layer "
                        f"spells {ours}=: write {self.name}(..., {ours}={value!r})")

  def bind(self, host: Host, args, kwargs) -> dict:
    """The constructor's arguments, checked (see :meth:`check`), under jaxup's names."""
    self.refuse_foreign(host, kwargs)
    try:
      bound = self.signature(host).bind(None, *args, **kwargs)
    except TypeError as e:
      raise TypeError(f"{self.name}: {e}") from None
    bound.apply_defaults()
    values = dict(bound.arguments)
    del values["self"]
    return self.check(host, values)

  def keywords(self, host: Host, options: Mapping[str, Any]) -> dict:
    """``options`` in jaxup's names as the framework's constructor keywords (those it takes)."""
    params = self.signature(host).parameters
    return {host.name(k): v for k, v in options.items() if host.name(k) in params}

  def own_names(self, host: Host) -> tuple[str, ...]:
    """The layer's own options, without the framework's (dtypes, inits, ``rngs``)."""
    extra = host.dtypes + host.inits + host.trailing
    return tuple(o.name for o in self.arguments(host) if o not in extra)

  def own(self, host: Host, options: Mapping[str, Any]) -> dict:
    """``options`` restricted to :meth:`own_names`."""
    return {name: options[name] for name in self.own_names(host)}

  # ----- parameters and the forward pass

  def kernel_shape(self, options: Mapping[str, Any], num_spatial: int,
                   in_features: int, names: Callable = str) -> tuple[int, ...]:
    """``[*K, C_in // groups, features]`` (``[*K, features // groups, C_in]`` transposed)."""
    groups, features = options["groups"], options["features"]
    in_features = checks.integer(in_features, names("in_features"), minimum=1)
    if in_features % groups:
      raise ValueError(f"{names('groups')} must divide the input channels ({in_features}), "
                       f"got {groups}")
    kernel = checks.ints(options["kernel_size"], num_spatial, names("kernel_size"))
    if self.transpose:
      return (*kernel, features // groups, in_features)
    return (*kernel, in_features // groups, features)

  def input_shape(self, options: Mapping[str, Any], x_shape: Sequence[int],
                  names: Callable = str) -> tuple[tuple[int, ...], Layout]:
    """The kernel shape for an input of ``x_shape``, and the input's layout."""
    lay = parse_layout(options["layout"], len(x_shape), name=names("layout"),
                       num_spatial=spatial_ranks(options["layout"], len(x_shape),
                                                 options["kernel_size"]))
    return self.kernel_shape(options, lay.num_spatial, lay.channels(x_shape), names), lay

  def apply(self, options: Mapping[str, Any], x: jax.Array, kernel: jax.Array,
            bias: Optional[jax.Array], *args, **kwargs) -> jax.Array:
    """The layer's output: the function of the kind, then the bias along the channels."""
    try:
      inspect.signature(self.function).bind(x, kernel, options, *args, **kwargs)
    except TypeError as e:
      raise TypeError(f"{self.name} called with {e}") from None
    y = self.function(x, kernel, options, *args, **kwargs)
    if bias is not None:
      lay = parse_layout(options["layout"], y.ndim, num_spatial=(kernel.ndim - 2,))
      y = add_bias(y, bias, lay)
    return y

  # ----- documentation

  def docstring(self, host: Host, params: Mapping[str, str], example: str,
                note: str = "") -> str:
    """The class docstring in the framework's names: the shapes, the arguments, an example."""
    fmt = dict(features=host.name("features"), kernel=params["kernel"], bias=params["bias"])
    lines = [self.doc.format(**fmt)]
    if note:
      lines += ["", note]
    lines += ["", f"{host.section}:"]
    for o in self.arguments(host):
      doc = o.doc
      if host.eager and o.name == "kernel_size":
        doc = "one int per spatial axis (a tuple: its length sets the spatial rank)."
      lines.append(textwrap.fill(f"{host.name(o.name)}: {doc.format(**fmt)}", width=94,
                                 initial_indent="  ", subsequent_indent="    "))
    lines += ["", "Example:", example]
    return "\n".join(lines)


def spatial_rank(kernel_size) -> int:
  """The spatial rank a ``kernel_size`` tuple sets (nnx and Equinox make their parameters
  before any input is seen)."""
  if not _sized(kernel_size):
    raise TypeError(
        f"kernel_size must be a tuple with one size per spatial axis, such as (3, 3) (its "
        f"length sets the spatial rank), got {checks.describe(kernel_size)}")
  return len(kernel_size)


def _conv(x, kernel, o):
  return padded_conv(x, kernel, stride=o["stride"], padding=o["padding"],
                     dilation=o["dilation"], groups=o["groups"],
                     padding_mode=o["padding_mode"], layout=o["layout"],
                     precision=o["precision"])


def _conv_transpose(x, kernel, o, output_size=None):
  return conv_transpose(
      x, kernel, stride=o["stride"], padding=o["padding"],
      output_padding=0 if output_size is not None else o["output_padding"],
      output_size=output_size, dilation=o["dilation"], groups=o["groups"], layout=o["layout"],
      precision=o["precision"])


def _upsample_conv(x, kernel, o):
  return upsample_conv(x, kernel, o["factor"], padding=o["padding"], dilation=o["dilation"],
                       groups=o["groups"], layout=o["layout"], precision=o["precision"],
                       fused=o["fused"], lowering=o["lowering"])


CONV = LayerSpec(
    name="Conv",
    doc="""Convolution with PyTorch semantics: :func:`jaxup.conv` plus a bias and a padding mode.

Shapes, channels-last: ``[N, *S, C_in] -> [N, *S_out, {features}]`` with
``S_out = 1 + (S + 2 padding - dilation (K - 1) - 1) // stride``; 1, 2 or 3 spatial axes.
``{kernel}`` is ``[*K, C_in // groups, {features}]`` (HWIO), what :func:`jaxup.kernel_from_torch`
makes of a PyTorch ``Conv*d.weight``, and ``{bias}`` is ``[{features}]``. ``padding`` defaults
to ``0``, PyTorch's default (Flax's and Haiku's own convolutions default to ``"SAME"``).""",
    positional=(),
    options=(_STRIDE, _PADDING, _DILATION, _GROUPS,
             Option("padding_mode", "zeros", "``\"zeros\"``, ``\"reflect\"``, "
                    "``\"replicate\"`` or ``\"circular\"``, as PyTorch.",
                    lambda v, name, n: checks.choice(v, name, PADDING_MODES))),
    tail=(),
    transpose=False,
    function=_conv,
)

CONV_TRANSPOSE = LayerSpec(
    name="ConvTranspose",
    doc="""Transposed convolution with PyTorch semantics: :func:`jaxup.conv_transpose` plus a bias.

The transpose (the VJP) of :class:`Conv` with the same kernel. Shapes, channels-last:
``[N, *S, C_in] -> [N, *S_out, {features}]`` with
``S_out = (S - 1) stride - 2 padding + dilation (K - 1) + output_padding + 1``. ``{kernel}``
is ``[*K, {features} // groups, C_in]``, the kernel of the convolution being transposed (what
:func:`jaxup.kernel_from_torch` makes of a PyTorch ``ConvTranspose*d.weight``), and ``{bias}``
is ``[{features}]``. Calling it with ``output_size`` picks among the valid output sizes.""",
    positional=(),
    options=(_STRIDE, dataclasses.replace(_PADDING, doc="the padding of the convolution being "
                                          "transposed, as in :func:`jaxup.conv_transpose`."),
             Option("output_padding", 0, "added to the high side of each output axis; less "
                    "than the stride or the dilation.", _per_axis(0)),
             _DILATION, _GROUPS),
    tail=(),
    transpose=True,
    function=_conv_transpose,
    call_doc="Applies the layer; ``output_size`` picks among the valid output sizes.",
)

UPSAMPLE_CONV = LayerSpec(
    name="UpsampleConv",
    doc="""Nearest upsampling then a stride-1 convolution, fused: :func:`jaxup.upsample_conv` plus a bias.

PyTorch's ``nn.Upsample(scale_factor=factor)`` followed by ``nn.Conv{{1,2,3}}d`` (``from_torch``
of that ``nn.Sequential`` builds it with the weights). Shapes, channels-last:
``[N, *S, C_in] -> [N, *S_out, {features}]`` with ``S_out = factor S + 2 padding - dilation
(K - 1)`` (``"same"``: ``factor S``). ``{kernel}`` is ``[*K, C_in // groups, {features}]``
(HWIO) and ``{bias}`` ``[{features}]``.""",
    positional=(Option("factor", REQUIRED, "the upsampling factor, an int or one per spatial "
                       "axis.", _per_axis(1)),),
    options=(dataclasses.replace(_PADDING, doc="the padding of the convolution of the "
                                 "upsampled image, as in :func:`jaxup.upsample_conv`."),
             _DILATION, _GROUPS),
    tail=(Option("fused", "auto", "``True`` for the polyphase form, ``False`` for the pair as "
                 "written, ``\"auto\"`` to choose (:func:`jaxup.upsample_conv`).", _fused),
          Option("lowering", "auto", "``\"auto\"``, ``\"xla\"`` or ``\"matmul\"``, as in "
                 ":func:`jaxup.conv`.", lambda v, name, n: checks.choice(v, name, LOWERINGS))),
    transpose=False,
    function=_upsample_conv,
)

# The layers with parameters, by name: what every framework module defines and from_torch builds.
SPECS = {spec.name: spec for spec in (CONV, CONV_TRANSPOSE, UPSAMPLE_CONV)}


class StatelessLayer:
  """A jaxup function with its options bound: a layer without parameters.

  Stateless layers need no framework: the same object works inside Flax linen and nnx modules,
  ``hk.transform`` and every ``Sequential``. Arguments are checked against the function's
  signature when the layer is built; values are checked when it is called.
  """

  function: Callable
  num_arrays: int = 1
  # PyTorch's keyword names, answered with jaxup's.
  torch_names: dict = {"kernel_size": "window", "upscale_factor": "factor",
                       "downscale_factor": "factor", "scale_factor": "scale", "mode": "method",
                       "recompute_scale_factor": "recompute_scale"}
  missing_array_hint: str = ""

  def __init__(self, *args, **kwargs):
    for torch_name, name in self.torch_names.items():
      if torch_name in kwargs and name in inspect.signature(self.function).parameters:
        raise TypeError(
            f"{type(self).__name__} got {torch_name}={kwargs[torch_name]!r}, PyTorch's name; "
            f"jaxup spells it {name}= (see docs/guides/porting-pytorch.md, or build the layer "
            "from the PyTorch module with from_torch)")
    try:
      inspect.signature(self.function).bind(*([None] * self.num_arrays), *args, **kwargs)
    except TypeError as e:
      raise TypeError(f"{type(self).__name__}: {e}") from None
    self.args, self.kwargs = args, kwargs

  def __call__(self, *arrays: jax.Array) -> Any:
    if len(arrays) == 1 and isinstance(arrays[0], tuple) and self.num_arrays > 1:
      arrays = arrays[0]  # the tuple a previous layer returned, e.g. (values, indices)
    if len(arrays) != self.num_arrays:
      raise TypeError(
          f"{type(self).__name__} takes {self.num_arrays} array argument(s), got "
          f"{len(arrays)}{self.missing_array_hint}")
    return self.function(*arrays, *self.args, **self.kwargs)

  def __repr__(self) -> str:
    options = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
    return f"{type(self).__name__}({', '.join(options)})"


class Resize(StatelessLayer):
  """:func:`jaxup.resize` as a layer: ``Resize(*, size=None, scale=None, method, ...)``.

  ``size`` (the output size) and ``scale`` (a factor) are keyword-only, so that ``Resize(2)``
  cannot mean a size here and a factor in :class:`UpsampleNearest`. ``method`` is required (PyTorch's
  ``Upsample`` defaults to nearest, other frameworks to linear).

  ``method`` is required, as in :func:`jaxup.resize`; a missing one, or PyTorch's ``mode=`` and
  ``scale_factor=``, fail when the layer is built, with what to write instead.

  Example:
    >>> import jax.numpy as jnp
    >>> Resize(scale=2, method="linear", align_corners=True)(jnp.ones((1, 4, 4, 3))).shape
    (1, 8, 8, 3)
  """

  function = staticmethod(resize)

  def __init__(self, *args, **kwargs):
    if args:
      raise TypeError(
          f"Resize takes size= or scale= by keyword, got the positional {args[0]!r}: "
          f"Resize(size={args[0]!r}, ...) sets the output size, Resize(scale={args[0]!r}, ...) "
          "multiplies the input size")
    # The same answer as resize itself for a missing method or PyTorch's argument names.
    message = resize.argument_hint((None,), kwargs)
    if message is not None:
      raise TypeError(f"Resize: {message}")
    super().__init__(**kwargs)


class UpsampleNearest(StatelessLayer):
  """:func:`jaxup.upsample_nearest` as a layer: ``UpsampleNearest(factor)``.

  Example:
    >>> import jax.numpy as jnp
    >>> UpsampleNearest(2)(jnp.ones((1, 4, 4, 3))).shape
    (1, 8, 8, 3)
  """

  function = staticmethod(upsample_nearest)


class BedOfNails(StatelessLayer):
  """:func:`jaxup.bed_of_nails` as a layer: ``BedOfNails(factor)``.

  Example:
    >>> import jax.numpy as jnp
    >>> BedOfNails(2)(jnp.ones((1, 4, 4, 3))).shape
    (1, 8, 8, 3)
  """

  function = staticmethod(bed_of_nails)


class PixelShuffle(StatelessLayer):
  """:func:`jaxup.pixel_shuffle` as a layer: ``PixelShuffle(factor, *, order="CRD")``.

  Example:
    >>> import jax.numpy as jnp
    >>> PixelShuffle(2)(jnp.ones((1, 4, 4, 12))).shape
    (1, 8, 8, 3)
  """

  function = staticmethod(pixel_shuffle)


class PixelUnshuffle(StatelessLayer):
  """:func:`jaxup.pixel_unshuffle` as a layer: ``PixelUnshuffle(factor, *, order="CRD")``.

  Example:
    >>> import jax.numpy as jnp
    >>> PixelUnshuffle(2)(jnp.ones((1, 8, 8, 3))).shape
    (1, 4, 4, 12)
  """

  function = staticmethod(pixel_unshuffle)


class MaxPool(StatelessLayer):
  """:func:`jaxup.max_pool` as a layer: ``MaxPool(window, *, stride=None, ...,
  return_indices=False)``.

  Example:
    >>> import jax.numpy as jnp
    >>> values, indices = MaxPool(2, return_indices=True)(jnp.ones((1, 4, 4, 3)))
    >>> values.shape, indices.shape
    ((1, 2, 2, 3), (1, 2, 2, 3))
  """

  function = staticmethod(max_pool)


class MaxUnpool(StatelessLayer):
  """:func:`jaxup.max_unpool` as a layer: ``MaxUnpool(window, *, stride=None, padding=0,
  output_size=None)``, called on ``values, indices`` or on the pair ``(values, indices)`` that
  ``MaxPool(..., return_indices=True)`` returns, so the two chain in any ``Sequential``.

  Example:
    >>> import jax.numpy as jnp
    >>> values, indices = MaxPool(2, return_indices=True)(jnp.ones((1, 4, 4, 3)))
    >>> MaxUnpool(2)(values, indices).shape
    (1, 4, 4, 3)
  """

  function = staticmethod(max_unpool)
  num_arrays = 2
  missing_array_hint = (": call it on (values, indices); MaxPool(..., return_indices=True) "
                        "returns that pair")


class Elementwise:
  """A function of one array applied elementwise (an activation), with its options bound.

  What ``from_torch`` makes of ``ReLU``, ``GELU``, ``Identity``, ``Dropout`` (in eval) and the
  other parameter-free modules of a ``Sequential``; like the stateless layers, it works in any
  framework's ``Sequential``.
  """

  def __init__(self, name: str, function: Callable, **kwargs):
    self.name, self.function, self.kwargs = name, function, kwargs

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.function(x, **self.kwargs)

  def __repr__(self) -> str:
    options = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
    return f"{self.name}({options})"


def flatten(x: jax.Array, *, layout: Optional[str] = None) -> jax.Array:
  """PyTorch's ``Flatten()`` (``start_dim=1``): ``[N, ...] -> [N, F]`` in PyTorch's element
  order, so that a ported ``Linear`` after it keeps its weights. A channels-last input
  (``layout``, channels-last by default) has its channels moved next to the batch first; an
  unbatched layout (``"CHW"``, ``"HWC"``) gives ``[F]``."""
  x = checks.array(x, "x", kind="any")
  if x.ndim < 3 and layout is None:
    return x
  lay = parse_layout(layout, x.ndim)
  if lay.batch_axis is None:
    return jnp.moveaxis(x, lay.channel_axis, 0).reshape(-1)
  x = jnp.moveaxis(x, (lay.batch_axis, lay.channel_axis), (0, 1))
  return x.reshape(x.shape[0], -1)


# The names every framework module re-exports.
STATELESS_LAYERS = ["BedOfNails", "MaxPool", "MaxUnpool", "PixelShuffle", "PixelUnshuffle", "Resize",
                    "UpsampleNearest"]
