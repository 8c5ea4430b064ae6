"""Porting whole PyTorch models: lists of submodules in every framework's spelling, all
mismatches reported at once, general Sequentials through from_torch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _np(t):
  return t.detach().numpy()


class Blocks(torch.nn.Module):
  """A list of submodules, as PyTorch models keep them: state_dict keys ``blocks.0.weight``."""

  def __init__(self):
    super().__init__()
    self.blocks = torch.nn.ModuleList([torch.nn.Conv2d(3, 4, 3, padding=1),
                                       torch.nn.Conv2d(4, 2, 1)])

  def forward(self, x):
    for block in self.blocks:
      x = block(x)
    return x


@pytest.fixture(scope="module")
def blocks():
  torch.manual_seed(0)
  model = Blocks().double()
  x = torch.randn(1, 3, 5, 5, dtype=torch.float64)
  return model, jnp.asarray(_np(x)), _np(model(x))


def test_linen_list_in_setup_named_blocks_0_loads_blocks_dot_0(blocks):
  import flax.linen as nn
  jflax = pytest.importorskip("jaxup.flax")
  model, x, expected = blocks

  class Model(nn.Module):
    def setup(self):  # linen names these blocks_0 and blocks_1
      self.blocks = [jflax.Conv(4, 3, padding=1, layout="NCHW", param_dtype=jnp.float64),
                     jflax.Conv(2, 1, layout="NCHW", param_dtype=jnp.float64)]

    def __call__(self, x):
      for block in self.blocks:
        x = block(x)
      return x

  m = Model()
  variables = m.init(jax.random.key(0), x)
  assert set(variables["params"]) == {"blocks_0", "blocks_1"}
  variables = jflax.load_state_dict(variables, model.state_dict())
  np.testing.assert_allclose(m.apply(variables, x), expected, rtol=1e-12, atol=1e-12)


def test_nnx_list_attribute_loads_blocks_dot_0(blocks):
  from flax import nnx
  jnnx = pytest.importorskip("jaxup.nnx")
  model, x, expected = blocks

  class Model(nnx.Module):
    def __init__(self, rngs):
      kw = dict(layout="NCHW", param_dtype=jnp.float64, rngs=rngs)
      self.blocks = nnx.List([jnnx.Conv(3, 4, (3, 3), padding=1, **kw),
                              jnnx.Conv(4, 2, (1, 1), **kw)])

    def __call__(self, x):
      for block in self.blocks:
        x = block(x)
      return x

  m = jnnx.load_state_dict(Model(nnx.Rngs(0)), model.state_dict())
  np.testing.assert_allclose(m(x), expected, rtol=1e-12, atol=1e-12)


def test_haiku_names_blocks_0_load_blocks_dot_0(blocks):
  """Haiku names must be identifiers: blocks_0 stands for PyTorch's blocks.0."""
  import haiku as hk
  jhk = pytest.importorskip("jaxup.haiku")
  model, x, expected = blocks

  def forward(x):
    x = jhk.Conv(4, 3, padding=1, layout="NCHW", name="blocks_0")(x)
    return jhk.Conv(2, 1, layout="NCHW", name="blocks_1")(x)

  f = hk.without_apply_rng(hk.transform(forward))
  params = f.init(jax.random.key(0), x)
  # A list of pairs works as well as a mapping (it raised AttributeError).
  params = jhk.load_state_dict(params, list(model.state_dict().items()))
  np.testing.assert_allclose(f.apply(params, x), expected, rtol=1e-12, atol=1e-12)


def test_equinox_list_field_loads_blocks_dot_0(blocks):
  import equinox as eqx
  jeqx = pytest.importorskip("jaxup.equinox")
  model, x, expected = blocks

  class Model(eqx.Module):
    blocks: list

    def __init__(self, key):
      k = jax.random.split(key)
      self.blocks = [jeqx.Conv(3, 4, (3, 3), padding=1, layout="NCHW", dtype=jnp.float64,
                               key=k[0]),
                     jeqx.Conv(4, 2, (1, 1), layout="NCHW", dtype=jnp.float64, key=k[1])]

    def __call__(self, x):
      for block in self.blocks:
        x = block(x)
      return x

  m = jeqx.load_state_dict(Model(jax.random.key(0)), model.state_dict())
  np.testing.assert_allclose(m(x), expected, rtol=1e-12, atol=1e-12)


def test_every_mismatch_is_reported_at_once():
  import flax.linen as nn
  jflax = pytest.importorskip("jaxup.flax")
  model = nn.Sequential([jflax.Conv(4, 3), jflax.Conv(2, 1), jflax.Conv(2, 1)])
  variables = model.init(jax.random.key(0), jnp.ones((1, 8, 8, 3)))
  state_dict = {"0.weight": torch.zeros(4, 3, 5, 5), "0.bias": torch.zeros(4),
                "1.weight": torch.zeros(2, 4, 1, 1), "1.bias": torch.zeros(3),
                "7.weight": torch.zeros(1)}
  with pytest.raises(ValueError) as info:
    jflax.load_state_dict(variables, state_dict)
  message = str(info.value)
  for part in (r"state_dict['0.weight'] (shape (4, 3, 5, 5))",
               r"state_dict['1.bias'] (shape (3,))",
               "no place in the model for ['7.weight']",
               "no value in the state_dict for ['2.kernel', '2.bias']"):
    assert part in message, (part, message)


@pytest.mark.parametrize("framework", ["flax", "nnx", "haiku", "equinox"])
def test_a_flattened_kernel_is_refused_naming_the_key(framework):
  """A 1-D tensor of a kernel's size once reshaped silently into the kernel."""
  fw = pytest.importorskip(f"jaxup.{framework}")
  flat = {"weight": torch.arange(2 * 3 * 3 * 3, dtype=torch.float32), "bias": torch.zeros(2)}
  x = jnp.ones((1, 5, 5, 3))
  if framework == "flax":
    target = fw.Conv(2, 3).init(jax.random.key(0), x)
  elif framework == "nnx":
    from flax import nnx
    target = fw.Conv(3, 2, (3, 3), rngs=nnx.Rngs(0))
  elif framework == "haiku":
    import haiku as hk
    target = hk.transform(lambda v: fw.Conv(2, 3)(v)).init(jax.random.key(0), x)
    flat = {f"conv.{k}": v for k, v in flat.items()}
  else:
    target = fw.Conv(3, 2, (3, 3), key=jax.random.key(0))
  with pytest.raises(ValueError, match=r"state_dict\['(conv\.)?weight'\] \(shape \(54,\)\) "
                     r"gives '(kernel|w)' the shape \(54,\), but the model's '(kernel|w)' has "
                     r"shape \(3, 3, 3, 2\)"):
    fw.load_state_dict(target, flat)


def test_a_norm_scale_still_takes_haikus_broadcast_shape():
  import haiku as hk
  jhk = pytest.importorskip("jaxup.haiku")
  f = hk.transform_with_state(lambda x: hk.BatchNorm(True, True, 0.9, data_format="channels_first",
                                                     name="bn")(x, is_training=True))
  params, state = f.init(jax.random.key(0), jnp.ones((2, 3, 4, 4)))
  bn = torch.nn.BatchNorm2d(3)
  params, state = jhk.load_state_dict((params, state),
                                      {f"bn.{k}": v for k, v in bn.state_dict().items()})
  assert params["bn"]["scale"].shape == (1, 3, 1, 1)


def _head():
  """A general Sequential: activations, Identity, Dropout, AdaptiveAvgPool, Flatten, nesting."""
  torch.manual_seed(0)
  return torch.nn.Sequential(
      torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
      torch.nn.Sequential(torch.nn.Upsample(scale_factor=2), torch.nn.Conv2d(4, 4, 3, padding=1)),
      torch.nn.SiLU(), torch.nn.Dropout(0.3), torch.nn.Identity(),
      torch.nn.GELU(approximate="tanh"), torch.nn.LeakyReLU(0.2),
      torch.nn.Sequential(torch.nn.Conv2d(4, 6, 1), torch.nn.Tanh()),
      torch.nn.AdaptiveAvgPool2d(3), torch.nn.Sigmoid(), torch.nn.GELU(), torch.nn.Flatten(),
      torch.nn.Linear(54, 5)).double().eval()


@pytest.mark.parametrize("framework", ["flax", "nnx", "haiku", "equinox"])
def test_from_torch_reads_a_general_sequential(framework):
  fw = pytest.importorskip(f"jaxup.{framework}")
  model = _head()
  x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
  expected = _np(model(x))
  nhwc = jnp.moveaxis(jnp.asarray(_np(x)), 1, -1)  # the default layout: channels-last
  if framework == "flax":
    import flax.linen as nn
    layer, variables = fw.from_torch(model)
    assert isinstance(layer, nn.Sequential)
    # The children's variables under the Sequential's own names, as init makes them.
    assert jax.tree_util.tree_structure(layer.init(jax.random.key(0), nhwc)) == \
        jax.tree_util.tree_structure(variables)
    got = layer.apply(variables, nhwc)
  elif framework == "nnx":
    got = fw.from_torch(model)(nhwc)
  elif framework == "haiku":
    f, params, state = fw.from_torch(model)
    assert sorted(params) == ["layers_0", "layers_13", "layers_2", "layers_8/layers_0"]
    got = f.apply(params, state, nhwc)[0]
  else:  # Equinox's Linear takes one example: the Sequential is mapped over the batch
    got = jax.vmap(fw.from_torch(model, layout="CHW"))(jnp.asarray(_np(x)))
  np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_flax_sequential_variables_reload_by_name():
  jflax = pytest.importorskip("jaxup.flax")
  model = _head()
  layer, variables = jflax.from_torch(model)
  again = jflax.load_state_dict(variables, model.state_dict())
  jax.tree_util.tree_map(np.testing.assert_array_equal, again, variables)


def test_dropout_in_training_mode_is_refused():
  jflax = pytest.importorskip("jaxup.flax")
  with pytest.raises(ValueError, match=r"Dropout in training mode drops at random; call "
                     r"module.eval\(\) first"):
    jflax.from_torch(torch.nn.Sequential(torch.nn.Dropout(0.5)))


class Upsample2D(torch.nn.Module):
  """The shape of diffusers' Upsample2D: the upsampling is a call in forward, not a module."""

  def __init__(self, channels, use_conv=False, use_conv_transpose=False, out_channels=None,
               interpolate=True):
    super().__init__()
    self.channels = channels
    self.out_channels = out_channels or channels
    self.use_conv = use_conv
    self.use_conv_transpose = use_conv_transpose
    self.interpolate = interpolate
    self.norm = None
    self.conv = None
    if use_conv_transpose:
      self.conv = torch.nn.ConvTranspose2d(channels, self.out_channels, 4, 2, 1)
    elif use_conv:
      self.conv = torch.nn.Conv2d(channels, self.out_channels, 3, padding=1)

  def forward(self, hidden_states):
    if self.use_conv_transpose:
      return self.conv(hidden_states)
    if self.interpolate:
      hidden_states = torch.nn.functional.interpolate(hidden_states, scale_factor=2.0,
                                                      mode="nearest")
    if self.use_conv:
      hidden_states = self.conv(hidden_states)
    return hidden_states


@pytest.mark.parametrize("framework", ["flax", "nnx", "haiku", "equinox"])
def test_diffusers_upsample_2d_is_an_upsample_conv(framework):
  fw = pytest.importorskip(f"jaxup.{framework}")
  torch.manual_seed(0)
  module = Upsample2D(4, use_conv=True, out_channels=3).double()
  x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
  expected = _np(module(x))
  xj = jnp.asarray(_np(x))
  if framework == "flax":
    layer, variables = fw.from_torch(module, layout="NCHW")
    assert isinstance(layer, fw.UpsampleConv) and layer.factor == (2, 2)
    got = layer.apply(variables, xj)
  elif framework == "haiku":
    f, params, state = fw.from_torch(module, layout="NCHW")
    assert list(params) == ["upsample_conv"]
    got = f.apply(params, state, xj)[0]
  else:
    layer = fw.from_torch(module, layout="NCHW")
    assert isinstance(layer, fw.UpsampleConv)
    got = layer(xj)
  np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
  with pytest.raises(ValueError, match=r"Upsample2D is read as an UpsampleConv .* this one has "
                     r"use_conv_transpose=True"):
    fw.from_torch(Upsample2D(4, use_conv_transpose=True))


def test_haiku_from_torch_module_form_inside_a_larger_model():
  import haiku as hk
  jhk = pytest.importorskip("jaxup.haiku")
  torch.manual_seed(0)
  backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.GroupNorm(2, 4), torch.nn.Conv2d(4, 2, 1)).double()
  x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
  expected = 2 * _np(backbone(x))
  xj = jnp.moveaxis(jnp.asarray(_np(x)), 1, -1)

  class Outer(hk.Module):
    def __call__(self, x):
      return 2 * jhk.from_torch(backbone, name="backbone", transform=False)(x)

  f = hk.without_apply_rng(hk.transform_with_state(lambda x: Outer()(x)))
  params, state = f.init(jax.random.key(0), xj)
  assert "outer/backbone/layers_0" in params
  got = jnp.moveaxis(f.apply(params, state, xj)[0], -1, 1)
  np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
  with pytest.raises(ValueError, match=r"transform=False\) of a module with BatchNorm"):
    jhk.from_torch(torch.nn.BatchNorm2d(4), transform=False)
