"""Porting PyTorch models: every friction point of a port has a test, and a decoder with every
jaxup layer and PyTorch's norms loads into linen, nnx, Haiku and Equinox by name and gives
PyTorch's outputs and gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxup
from jaxup._src import layers

torch = pytest.importorskip("torch")

FRAMEWORKS = ["flax", "nnx", "haiku", "equinox"]


def _framework(name):
  pytest.importorskip({"nnx": "flax"}.get(name, name))
  return pytest.importorskip(f"jaxup.{name}")


def _np(t):
  return t.detach().numpy()


# ---------------------------------------------------------------------------------------------
# Friction points


def test_resize_layer_names_size_and_factor_by_keyword_and_needs_a_method():
  with pytest.raises(TypeError, match=r"Resize takes size= or scale= by keyword, got the "
                     r"positional 2: Resize\(size=2, \.\.\.\) sets the output size"):
    layers.Resize(2, method="nearest")
  with pytest.raises(TypeError, match=r"Resize: resize\(\): missing a required argument: "
                     r"'method'; resize has no default method"):
    layers.Resize(size=4)
  with pytest.raises(TypeError, match=r"resize takes scale=, not scale_factor= \(PyTorch's "
                     r"name\): write scale=2"):
    layers.Resize(scale_factor=2, method="linear")
  with pytest.raises(TypeError, match=r"resize takes method=, not mode= \(PyTorch's name\): "
                     r"write method='bilinear'"):
    layers.Resize(scale=2, mode="bilinear")
  with pytest.raises(TypeError, match=r"MaxPool got kernel_size=2, .* spells it window="):
    layers.MaxPool(kernel_size=2)
  with pytest.raises(TypeError, match=r"PixelShuffle got upscale_factor=2, .* spells it factor="):
    layers.PixelShuffle(upscale_factor=2)
  x = jnp.zeros((1, 4, 4, 1))
  np.testing.assert_array_equal(layers.Resize(size=8, method="nearest")(x),
                                jaxup.upsample_nearest(x, 2))


def test_max_unpool_without_indices_says_where_they_come_from():
  values = jnp.zeros((1, 2, 2, 1))
  with pytest.raises(TypeError, match=r"MaxUnpool takes 2 array argument\(s\), got 1: call it "
                     r"on \(values, indices\); MaxPool\(\.\.\., return_indices=True\) returns"):
    layers.MaxUnpool(2)(values)


def test_kernel_from_torch_takes_weights_not_modules_and_bfloat16():
  conv = torch.nn.ConvTranspose2d(3, 5, (2, 4))
  with pytest.raises(TypeError, match=r"weight must be a convolution weight tensor, got a "
                     r"torch.nn.Module \(ConvTranspose2d\); pass module.weight, or build the "
                     r"whole layer with from_torch\(module\)"):
    jaxup.kernel_from_torch(conv)
  # The raw weight where a jaxup kernel belongs: in = out = kernel size would otherwise fit.
  square = torch.nn.ConvTranspose2d(3, 3, 3)
  with pytest.raises(TypeError, match=r"kernel must be a JAX or NumPy array, got a "
                     r"torch.Tensor .*jaxup.kernel_from_torch\(module.weight\)"):
    jaxup.conv_transpose(jnp.ones((1, 4, 4, 3)), square.weight)
  kernel = jaxup.kernel_from_torch(conv.weight.to(torch.bfloat16))
  assert kernel.dtype == jnp.bfloat16 and kernel.shape == (2, 4, 5, 3)
  np.testing.assert_array_equal(
      np.asarray(kernel, np.float32),
      np.moveaxis(conv.weight.to(torch.bfloat16).float().detach().numpy(), (0, 1), (-1, -2)))


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_one_loader_per_framework_reproduces_every_supported_module(name):
  """from_torch in every framework, channels-last by default, for each supported module."""
  fw = _framework(name)
  torch.manual_seed(0)
  x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
  bn = torch.nn.BatchNorm2d(4, eps=1e-3, momentum=0.3).double().eval()
  with torch.no_grad():
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.normal_()
    bn.bias.normal_()
  channel_layers = [
      torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, padding_mode="circular", groups=2),
      torch.nn.Conv2d(4, 2, (3, 2), padding="same", padding_mode="reflect", dilation=2),
      torch.nn.Conv2d(4, 2, 3, padding=2, padding_mode="replicate", bias=False),
      torch.nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
      torch.nn.Sequential(torch.nn.Upsample(scale_factor=2), torch.nn.Conv2d(4, 3, 3, padding=1)),
      torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
      torch.nn.Upsample(size=(5, 9)),
      torch.nn.PixelShuffle(2),
      torch.nn.PixelUnshuffle(2),
      torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True),
      bn,
      torch.nn.GroupNorm(2, 4, eps=1e-4),
  ]
  trailing_layers = [torch.nn.LayerNorm(6, eps=1e-3), torch.nn.Linear(6, 3)]
  for module in channel_layers + trailing_layers:
    module = module.double().eval()
    with torch.no_grad():
      expected = _np(module(x))
    trailing = module in trailing_layers
    native_norm = name == "equinox" and isinstance(module, (torch.nn.BatchNorm2d,
                                                            torch.nn.GroupNorm))
    if name == "equinox" and trailing:
      native_norm = "trailing"
    xj = jnp.asarray(x.numpy())
    if not trailing and not native_norm:
      xj = jnp.moveaxis(xj, 1, -1)  # the default: channels-last
    got = _apply(name, fw, module, xj, native_norm)
    if not trailing and not native_norm:
      got = jnp.moveaxis(got, -1, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=repr(module))

  # MaxPool with indices feeds MaxUnpool, both loaded.
  pool = torch.nn.MaxPool2d(2, return_indices=True)
  unpool = torch.nn.MaxUnpool2d(2)
  with torch.no_grad():
    expected = _np(unpool(*pool(x)))
  got = _apply(name, fw, unpool, _apply(name, fw, pool, jnp.asarray(x.numpy()), False, "NCHW"),
               False, "NCHW")
  np.testing.assert_array_equal(got, expected)


def _apply(name, fw, module, x, native_norm, layout=None):
  if name == "flax":
    layer, variables = fw.from_torch(module, layout=layout)
    return layer.apply(variables, x)
  if name == "nnx":
    return fw.from_torch(module, layout=layout)(x)
  if name == "haiku":
    f, params, state = fw.from_torch(module, layout=layout)
    return f.apply(params, state, *(x if isinstance(x, tuple) else (x,)))[0]
  loaded = fw.from_torch(module, layout=layout)
  if isinstance(loaded, tuple):
    layer, state = loaded
    return jax.vmap(lambda e: layer(e, state)[0], axis_name="batch")(x)
  if native_norm == "trailing":  # Equinox's LayerNorm and Linear take one vector
    return jax.vmap(loaded)(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)
  if native_norm:
    return jax.vmap(loaded)(x)
  if isinstance(x, tuple):
    return loaded(*x)
  return loaded(x)


def test_norm_loaders_carry_pytorch_epsilon_and_momentum():
  jflax = _framework("flax")
  bn, _ = jflax.from_torch(torch.nn.BatchNorm2d(4, momentum=0.1), layout="NCHW")
  assert (bn.momentum, bn.epsilon, bn.axis) == (pytest.approx(0.9), 1e-5, -3)
  gn, _ = jflax.from_torch(torch.nn.GroupNorm(2, 4))
  assert gn.epsilon == 1e-5  # Flax's default is 1e-6
  with pytest.raises(ValueError, match=r"GroupNorm with layout='NCHW': Flax's nn.GroupNorm "
                     r"normalises the last axis only"):
    jflax.from_torch(torch.nn.GroupNorm(2, 4), layout="NCHW")
  with pytest.raises(ValueError, match=r"momentum=None\) keeps a cumulative average"):
    jflax.from_torch(torch.nn.BatchNorm2d(4, momentum=None))
  with pytest.raises(TypeError, match=r"from_torch takes a torch.nn module, got a "
                     r"torch.Tensor; for a bare weight use jaxup.kernel_from_torch"):
    jflax.from_torch(torch.nn.Conv2d(2, 2, 1).weight)


def test_load_state_dict_names_what_does_not_match():
  jflax = _framework("flax")
  import flax.linen as nn

  torch_model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 2, 1))
  model = nn.Sequential([jflax.Conv(4, 3), jflax.Conv(2, 3)])
  variables = model.init(jax.random.key(0), jnp.ones((1, 8, 8, 3)))
  with pytest.raises(ValueError, match=r"state_dict\['1.weight'\] \(shape \(2, 4, 1, 1\)\) "
                     r"gives 'kernel' the shape \(1, 1, 4, 2\), but the model's 'kernel' has "
                     r"shape \(3, 3, 4, 2\)"):
    jflax.load_state_dict(variables, torch_model.state_dict())
  extra = dict(torch_model.state_dict(), **{"2.weight": torch.zeros(1)})
  variables = nn.Sequential([jflax.Conv(4, 3), jflax.Conv(2, 1)]).init(
      jax.random.key(0), jnp.ones((1, 8, 8, 3)))
  with pytest.raises(ValueError, match=r"no place in the model for \['2.weight'\]"):
    jflax.load_state_dict(variables, extra)


# ---------------------------------------------------------------------------------------------
# A decoder, ported to every framework by name


class TorchDecoder(torch.nn.Module):
  """2-D: conv, BatchNorm, GroupNorm, transposed conv, bilinear upsampling with corners
  aligned, max pool + unpool, pixel shuffle; 3-D: transposed conv and trilinear upsampling."""

  def __init__(self):
    super().__init__()
    self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
    self.bn1 = torch.nn.BatchNorm2d(4)
    self.gn = torch.nn.GroupNorm(2, 4)
    self.up1 = torch.nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1)
    self.up2 = torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
    self.pool = torch.nn.MaxPool2d(2, return_indices=True)
    self.unpool = torch.nn.MaxUnpool2d(2)
    self.conv2 = torch.nn.Conv2d(4, 8, 3, padding=1)
    self.shuffle = torch.nn.PixelShuffle(2)
    self.up3d = torch.nn.ConvTranspose3d(2, 2, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1),
                                         output_padding=(0, 1, 1))
    self.tri = torch.nn.Upsample(scale_factor=2, mode="trilinear")

  def forward(self, x, v):
    y = self.gn(torch.relu(self.bn1(self.conv1(x))))
    y = self.up2(self.up1(y))
    y = self.shuffle(self.conv2(self.unpool(*self.pool(y))))
    return y, self.tri(self.up3d(v))


def _torch_reference(dtype):
  torch.manual_seed(0)
  model = TorchDecoder().to(dtype)
  with torch.no_grad():
    model.bn1.running_mean.normal_()
    model.bn1.running_var.uniform_(0.5, 2.0)
    for p in model.parameters():
      p.normal_(0, 0.5)
  model.eval()
  x = torch.randn(2, 3, 3, 3, dtype=dtype, requires_grad=True)
  v = torch.randn(2, 2, 2, 3, 3, dtype=dtype, requires_grad=True)
  y, z = model(x, v)
  gy, gz = torch.randn_like(y), torch.randn_like(z)
  ((y * gy).sum() + (z * gz).sum()).backward()
  with torch.no_grad():
    y2, z2 = model(-2 * x, -2 * v)
  grads = {k: p.grad for k, p in model.named_parameters()}
  return dict(model=model, x=x, v=v, y=y, z=z, gy=gy, gz=gz, y2=y2, z2=z2, grads=grads)


def _moved(a, layout):
  """A PyTorch (channels-first) array in ``layout``."""
  a = jnp.asarray(_np(a))
  return a if layout.startswith("NC") else jnp.moveaxis(a, 1, -1)


def _back(a, layout):
  return np.asarray(a if layout.startswith("NC") else jnp.moveaxis(a, -1, 1))


def _check_port(forward, params, loaded_grads, ref, layout, tol):
  """``forward(params, x, v) -> (y, z)`` against PyTorch: values (jit), vmap, and gradients
  of inputs and parameters (PyTorch's parameter gradients loaded like its weights)."""
  x, v = _moved(ref["x"], layout), _moved(ref["v"], layout)
  close = lambda got, want: np.testing.assert_allclose(_back(got, layout), _np(want),
                                                       rtol=tol, atol=tol)
  # One compile for the values: the batch of two under vmap, each compared with PyTorch.
  ys, zs = jax.jit(jax.vmap(forward, in_axes=(None, 0, 0)))(
      params, jnp.stack([x, -2 * x]), jnp.stack([v, -2 * v]))
  close(ys[0], ref["y"])
  close(zs[0], ref["z"])
  close(ys[1], ref["y2"])
  close(zs[1], ref["z2"])

  gy, gz = _moved(ref["gy"], layout), _moved(ref["gz"], layout)

  def loss(params, x, v):
    y, z = forward(params, x, v)
    return jnp.sum(y * gy) + jnp.sum(z * gz)

  gp, gx, gv = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, x, v)
  close(gx, ref["x"].grad)
  close(gv, ref["v"].grad)
  want = jax.tree_util.tree_leaves(loaded_grads)
  got = jax.tree_util.tree_leaves(gp)
  assert len(got) == len(want) == 12
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


# float32: a decoder of 12 layers rounds differently in XLA and PyTorch by up to ~2e-5.
CASES = [("NCHW", torch.float64, 1e-12), ("NHWC", torch.float32, 5e-5)]


def _layouts(layout):
  return layout, {"NCHW": "NCDHW", "NHWC": "NDHWC"}[layout]


@pytest.mark.parametrize("layout,dtype,tol", CASES)
def test_decoder_port_linen(layout, dtype, tol):
  jflax = _framework("flax")
  import flax.linen as nn

  ref = _torch_reference(dtype)
  lay2, lay3 = _layouts(layout)
  cf = layout == "NCHW"
  dt = {torch.float64: jnp.float64, torch.float32: jnp.float32}[dtype]

  class Decoder(nn.Module):

    @nn.compact
    def __call__(self, x, v):
      y = jflax.Conv(4, 3, padding=1, padding_mode="reflect", layout=lay2, param_dtype=dt,
                     name="conv1")(x)
      y = nn.BatchNorm(use_running_average=True, axis=1 if cf else -1, momentum=0.9,
                       epsilon=1e-5, param_dtype=dt, name="bn1")(y)
      y = nn.relu(y)
      gn = nn.GroupNorm(2, epsilon=1e-5, param_dtype=dt, name="gn")
      y = jnp.moveaxis(gn(jnp.moveaxis(y, 1, -1)), -1, 1) if cf else gn(y)
      y = jflax.ConvTranspose(4, 4, stride=2, padding=1, layout=lay2, param_dtype=dt,
                              name="up1")(y)
      y = jflax.Resize(scale=2, method="linear", align_corners=True, layout=lay2)(y)
      y = jflax.MaxUnpool(2, layout=lay2)(jflax.MaxPool(2, return_indices=True, layout=lay2)(y))
      y = jflax.PixelShuffle(2, layout=lay2)(
          jflax.Conv(8, 3, padding=1, layout=lay2, param_dtype=dt, name="conv2")(y))
      z = jflax.ConvTranspose(2, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1),
                              output_padding=(0, 1, 1), layout=lay3, param_dtype=dt,
                              name="up3d")(v)
      return y, jflax.Resize(scale=2, method="linear", layout=lay3)(z)

  model = Decoder()
  # Only the shapes are needed: nothing is initialised.
  template = jax.eval_shape(model.init, jax.random.key(0), _moved(ref["x"], layout),
                            _moved(ref["v"], layout))
  variables = jflax.load_state_dict(template, ref["model"].state_dict())
  grads = jflax.load_state_dict(template, ref["grads"], strict=False)["params"]

  def forward(params, x, v):
    return model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x, v)

  _check_port(forward, variables["params"], grads, ref, layout, tol)


@pytest.mark.parametrize("layout,dtype,tol", CASES)
def test_decoder_port_nnx(layout, dtype, tol):
  jnnx = _framework("nnx")
  from flax import nnx

  ref = _torch_reference(dtype)
  lay2, lay3 = _layouts(layout)
  cf = layout == "NCHW"
  dt = {torch.float64: jnp.float64, torch.float32: jnp.float32}[dtype]

  class Decoder(nnx.Module):

    def __init__(self, rngs):
      kw = dict(param_dtype=dt, rngs=rngs)
      self.conv1 = jnnx.Conv(3, 4, (3, 3), padding=1, padding_mode="reflect", layout=lay2, **kw)
      self.bn1 = nnx.BatchNorm(4, use_running_average=True, axis=1 if cf else -1, **kw)
      self.gn = nnx.GroupNorm(4, num_groups=2, epsilon=1e-5, **kw)
      self.up1 = jnnx.ConvTranspose(4, 4, (4, 4), stride=2, padding=1, layout=lay2, **kw)
      self.up2 = jnnx.Resize(scale=2, method="linear", align_corners=True, layout=lay2)
      self.pool = jnnx.MaxPool(2, return_indices=True, layout=lay2)
      self.unpool = jnnx.MaxUnpool(2, layout=lay2)
      self.conv2 = jnnx.Conv(4, 8, (3, 3), padding=1, layout=lay2, **kw)
      self.shuffle = jnnx.PixelShuffle(2, layout=lay2)
      self.up3d = jnnx.ConvTranspose(2, 2, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1),
                                     output_padding=(0, 1, 1), layout=lay3, **kw)
      self.tri = jnnx.Resize(scale=2, method="linear", layout=lay3)

    def __call__(self, x, v):
      y = nnx.relu(self.bn1(self.conv1(x)))
      y = jnp.moveaxis(self.gn(jnp.moveaxis(y, 1, -1)), -1, 1) if cf else self.gn(y)
      y = self.up2(self.up1(y))
      y = self.shuffle(self.conv2(self.unpool(self.pool(y))))
      return y, self.tri(self.up3d(v))

  model = jnnx.load_state_dict(nnx.eval_shape(lambda: Decoder(nnx.Rngs(0))),
                               ref["model"].state_dict())
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  grads = nnx.state(jnnx.load_state_dict(nnx.eval_shape(lambda: Decoder(nnx.Rngs(0))),
                                         ref["grads"], strict=False), nnx.Param)

  def forward(params, x, v):
    return nnx.merge(graphdef, params, rest)(x, v)

  _check_port(forward, params, grads, ref, layout, tol)


@pytest.mark.parametrize("layout,dtype,tol", CASES)
def test_decoder_port_haiku(layout, dtype, tol):
  jhk = _framework("haiku")
  import haiku as hk

  ref = _torch_reference(dtype)
  lay2, lay3 = _layouts(layout)
  fmt = "channels_first" if layout == "NCHW" else "channels_last"

  def decoder(x, v, is_training=False):
    y = jhk.Conv(4, 3, padding=1, padding_mode="reflect", layout=lay2, name="conv1")(x)
    y = hk.BatchNorm(True, True, 0.9, eps=1e-5, data_format=fmt, name="bn1")(
        y, is_training=is_training)
    y = hk.GroupNorm(2, eps=1e-5, data_format=fmt, name="gn")(jax.nn.relu(y))
    y = jhk.ConvTranspose(4, 4, stride=2, padding=1, layout=lay2, name="up1")(y)
    y = jhk.Resize(scale=2, method="linear", align_corners=True, layout=lay2)(y)
    y = jhk.MaxUnpool(2, layout=lay2)(jhk.MaxPool(2, return_indices=True, layout=lay2)(y))
    y = jhk.PixelShuffle(2, layout=lay2)(jhk.Conv(8, 3, padding=1, layout=lay2, name="conv2")(y))
    z = jhk.ConvTranspose(2, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1),
                          output_padding=(0, 1, 1), layout=lay3, name="up3d")(v)
    return y, jhk.Resize(scale=2, method="linear", layout=lay3)(z)

  f = hk.without_apply_rng(hk.transform_with_state(decoder))
  template = jax.eval_shape(functools.partial(f.init, is_training=True), jax.random.key(0),
                            _moved(ref["x"], layout), _moved(ref["v"], layout))
  params, state = jhk.load_state_dict(template, ref["model"].state_dict())
  grads = jhk.load_state_dict(template[0], ref["grads"], strict=False)

  def forward(params, x, v):
    return f.apply(params, state, x, v)[0]

  _check_port(forward, params, grads, ref, layout, tol)


@pytest.mark.parametrize("layout,dtype,tol", CASES)
def test_decoder_port_equinox(layout, dtype, tol):
  jeqx = _framework("equinox")
  import equinox as eqx

  ref = _torch_reference(dtype)
  lay2, lay3 = _layouts(layout)
  cf = layout == "NCHW"
  dt = {torch.float64: jnp.float64, torch.float32: jnp.float32}[dtype]

  def per_example(norm, y, state=None):
    """Equinox's norms take one example, channels first."""
    y = y if cf else jnp.moveaxis(y, -1, 1)
    if state is None:
      out = jax.vmap(norm)(y)
    else:
      out = jax.vmap(lambda e: norm(e, state)[0], axis_name="batch")(y)
    return out if cf else jnp.moveaxis(out, 1, -1)

  class Decoder(eqx.Module):
    conv1: jeqx.Conv
    bn1: eqx.nn.BatchNorm
    gn: eqx.nn.GroupNorm
    up1: jeqx.ConvTranspose
    up2: jeqx.Resize
    pool: jeqx.MaxPool
    unpool: jeqx.MaxUnpool
    conv2: jeqx.Conv
    shuffle: jeqx.PixelShuffle
    up3d: jeqx.ConvTranspose
    tri: jeqx.Resize

    def __init__(self, key):
      k = jax.random.split(key, 4)
      self.conv1 = jeqx.Conv(3, 4, (3, 3), padding=1, padding_mode="reflect", layout=lay2,
                             dtype=dt, key=k[0])
      self.bn1 = eqx.nn.BatchNorm(4, "batch", momentum=0.9, inference=True, mode="ema",
                                  dtype=dt)
      self.gn = eqx.nn.GroupNorm(2, 4, dtype=dt)
      self.up1 = jeqx.ConvTranspose(4, 4, (4, 4), stride=2, padding=1, layout=lay2, dtype=dt,
                                    key=k[1])
      self.up2 = jeqx.Resize(scale=2, method="linear", align_corners=True, layout=lay2)
      self.pool = jeqx.MaxPool(2, return_indices=True, layout=lay2)
      self.unpool = jeqx.MaxUnpool(2, layout=lay2)
      self.conv2 = jeqx.Conv(4, 8, (3, 3), padding=1, layout=lay2, dtype=dt, key=k[2])
      self.shuffle = jeqx.PixelShuffle(2, layout=lay2)
      self.up3d = jeqx.ConvTranspose(2, 2, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1),
                                     output_padding=(0, 1, 1), layout=lay3, dtype=dt, key=k[3])
      self.tri = jeqx.Resize(scale=2, method="linear", layout=lay3)

    def __call__(self, x, v, state):
      y = jax.nn.relu(per_example(self.bn1, self.conv1(x), state))
      y = self.up2(self.up1(per_example(self.gn, y)))
      y = self.shuffle(self.conv2(self.unpool(self.pool(y))))
      return y, self.tri(self.up3d(v))

  # Only the shapes are needed: nothing is initialised.
  template = eqx.filter_eval_shape(eqx.nn.make_with_state(Decoder), jax.random.key(0))
  model, state = jeqx.load_state_dict(template, ref["model"].state_dict())
  params, static = eqx.partition(model, eqx.is_inexact_array)
  loaded = jeqx.load_state_dict((model, state), ref["grads"], strict=False)[0]
  grads = eqx.filter(loaded, eqx.is_inexact_array)

  def forward(params, x, v):
    return eqx.combine(params, static)(x, v, state)

  _check_port(forward, params, grads, ref, layout, tol)
