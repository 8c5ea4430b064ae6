"""The layers with parameters follow one description in every framework: the same arguments
(in each framework's names), the same checks and messages, the same documentation sections."""

import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxup
from jaxup._src import layers

FRAMEWORKS = ("flax", "nnx", "haiku", "equinox")
KINDS = ("Conv", "ConvTranspose", "UpsampleConv")
X = jnp.ones((1, 4, 4, 2))


def _module(framework):
  return pytest.importorskip(f"jaxup.{framework}")


# The framework's spelling of jaxup's names.
NAMES = {"haiku": {"features": "output_channels", "use_bias": "with_bias"},
         "nnx": {"features": "out_features"}, "equinox": {"features": "out_features"},
         "flax": {}}


def _name(framework, canonical):
  return NAMES[framework].get(canonical, canonical)


def build_and_apply(framework, kind, x=X, **kwargs):
  """Builds ``kind`` of ``framework`` (2 -> 3 channels, a 3x3 kernel) and applies it to ``x``."""
  fw = _module(framework)
  cls = getattr(fw, kind)
  args = dict(kwargs)
  args.setdefault(_name(framework, "features"), 3)
  args.setdefault("kernel_size", 3 if framework in ("flax", "haiku") else (3, 3))
  if kind == "UpsampleConv":
    args.setdefault("factor", 2)
  if framework == "flax":
    layer = cls(**args)
    return layer.apply(layer.init(jax.random.key(0), x), x)
  if framework == "nnx":
    from flax import nnx
    return cls(in_features=x.shape[-1], **args, rngs=nnx.Rngs(0))(x)
  if framework == "haiku":
    import haiku as hk
    f = hk.transform(lambda v: cls(**args)(v))
    return f.apply(f.init(jax.random.key(0), x), None, x)
  return cls(in_features=x.shape[-1], **args, key=jax.random.key(0))(x)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", ["no", "yes", 1, None, 0.5])
def test_use_bias_must_be_a_bool_everywhere(framework, kind, value):
  # Equinox's Conv and ConvTranspose took any value and built a bias.
  name = _name(framework, "use_bias")
  with pytest.raises(TypeError, match=rf"^{name} must be a bool \(True or False\), got "
                     rf"{re.escape(repr(value))}$"):
    build_and_apply(framework, kind, **{name: value})


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("kind", KINDS)
def test_layout_must_be_a_string_everywhere(framework, kind):
  # Equinox's Conv and ConvTranspose answered layout=5 with "object of type 'int' has no len()".
  with pytest.raises(TypeError, match=r"^layout must be a string such as 'NHWC' or None, got 5$"):
    build_and_apply(framework, kind, layout=5)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_from_torch_checks_layout_as_the_layers_do(framework):
  torch = pytest.importorskip("torch")
  fw = _module(framework)
  with pytest.raises(TypeError, match=r"^layout must be a string such as 'NHWC' or None, got 5$"):
    fw.from_torch(torch.nn.Conv2d(2, 3, 3), layout=5)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_layer_takes_precision(framework, kind):
  # Equinox's Conv and ConvTranspose had no precision.
  assert "precision" in inspect.signature(getattr(_module(framework), kind)).parameters
  with pytest.raises(ValueError, match=r"precision must be one of 'default', .*got 'fast'"):
    build_and_apply(framework, kind, precision="fast")
  x = jax.random.normal(jax.random.key(1), (1, 4, 4, 2))
  np.testing.assert_allclose(build_and_apply(framework, kind, x, precision="highest"),
                             build_and_apply(framework, kind, x), rtol=1e-6, atol=1e-6)


FOREIGN = [("strides", (2, 2), "stride"), ("kernel_dilation", 2, "dilation"),
           ("rate", 2, "dilation"), ("feature_group_count", 1, "groups")]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("foreign,value,ours", FOREIGN)
def test_other_libraries_option_names_are_answered_with_ours(framework, foreign, value, ours):
  # Flax's own ConvTranspose spells stride `strides`; the message names the one taken here.
  kind = "ConvTranspose" if ours != "groups" else "Conv"
  with pytest.raises(TypeError, match=rf"^{kind} got {foreign}={re.escape(repr(value))}, which "
                     rf"this layer spells {ours}=: write {kind}\(\.\.\., {ours}="):
    build_and_apply(framework, kind, **{foreign: value})


@pytest.mark.parametrize("framework", ["flax", "nnx", "equinox"])
def test_haiku_spelling_of_use_bias_names_the_framework_one(framework):
  with pytest.raises(TypeError, match=r"Conv got with_bias=False, which this layer spells "
                     r"use_bias="):
    build_and_apply(framework, "Conv", with_bias=False)
  with pytest.raises(TypeError, match=r"Conv got use_bias=False, which this layer spells "
                     r"with_bias="):
    build_and_apply("haiku", "Conv", use_bias=False)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("kind", KINDS)
def test_groups_must_divide_the_features_at_construction(framework, kind):
  with pytest.raises(ValueError, match=r"^groups must divide the output features \(3\), got 2$"):
    build_and_apply(framework, kind, groups=2)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("kind", KINDS)
def test_the_layers_compute_the_function_of_their_kind(framework, kind):
  """Each layer is its function plus the bias, with the framework's kernel."""
  x = jax.random.normal(jax.random.key(2), (1, 4, 4, 2))
  name = _name(framework, "use_bias")
  y = build_and_apply(framework, kind, x, padding=1, **{name: False})
  assert y.shape == {"Conv": (1, 4, 4, 3), "ConvTranspose": (1, 4, 4, 3),
                     "UpsampleConv": (1, 8, 8, 3)}[kind]
  # Without a bias the layer is linear in x: f(2x) = 2 f(x).
  np.testing.assert_allclose(build_and_apply(framework, kind, 2 * x, padding=1, **{name: False}),
                             2 * y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("kind", KINDS)
def test_signature_and_docstring_follow_the_description(framework, kind):
  cls = getattr(_module(framework), kind)
  spec = layers.SPECS[kind]
  params = [p for p in inspect.signature(cls).parameters if p not in ("parent", "name")
            or framework == "haiku"]
  host_names = [_name(framework, o) for o in ("features", "kernel_size")]
  assert set(host_names) <= set(params)
  for option in spec.positional + spec.options + spec.tail:
    assert option.name in params, (framework, kind, option.name)
  doc = cls.__doc__
  section = "Attributes:" if framework == "flax" else "Args:"
  assert doc.count(section) == 1 and "Example:" in doc and ">>> " in doc
  documented = re.findall(r"^  (\w+): ", doc.split(section)[1].split("Example:")[0], re.M)
  assert documented == params, (framework, kind)


def test_docstring_sections_are_one_style_across_the_frameworks():
  """Haiku's layers had no argument section; now every framework's have one, in one order."""
  docs = {fw: getattr(_module(fw), "Conv").__doc__ for fw in FRAMEWORKS}
  summaries = {d.splitlines()[0] for d in docs.values()}
  assert summaries == {"Convolution with PyTorch semantics: :func:`jaxup.conv` plus a bias and "
                       "a padding mode."}
  assert "with_bias: whether to add a bias of shape ``[output_channels]``." in docs["haiku"]


def test_stateless_layers_are_the_same_objects_in_every_framework():
  for fw in ("flax", "nnx", "haiku"):
    assert _module(fw).Resize is layers.Resize
  assert _module("equinox").Resize(scale=2, method="nearest")(X).shape == (1, 8, 8, 2)
  assert jaxup.upsample_nearest(X, 2).shape == (1, 8, 8, 2)
