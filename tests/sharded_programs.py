"""Sharded runs of every operator, executed by tests/test_sharding.py in a subprocess.

Run as ``XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/sharded_programs.py
GROUP`` with GROUP one of ``batch``, ``unpool`` or ``spatial``; it prints one line per case
and ``checked N cases`` at the end, and raises on the first failure.

* ``batch``: every operator under ``jit`` on inputs sharded along the batch axis over a mesh
  of 8 devices returns outputs sharded along their batch axis, equal to the one-device result,
  and its compiled program contains no cross-device collective.
* ``unpool``: the same for ``max_pool`` followed by ``max_unpool`` in every rank and layout,
  with non-overlapping and overlapping windows.
* ``spatial``: a volume sharded along its depth axis through ``conv``, ``conv_transpose``,
  ``resize``, ``max_pool`` and ``max_unpool`` gives the one-device numbers (collectives are
  allowed: windows cross the shards).
* ``halo``: the spatial-partitioning matrix (operators x sharded axes x layouts x meshes):
  every operator and its gradient in ``x``, on inputs sharded along spatial axes (with the
  batch on a 2-D mesh), returns outputs sharded along the same axes, equal to one device,
  from a program whose only collective is ``collective-permute`` (halo exchange), with
  per-device temp memory within the bound of :func:`temp_bound`. Then the documented
  exceptions: the one-device numbers, whatever the communication.
"""

from __future__ import annotations

import sys

COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")
DEVICES = 8


def collectives_in(hlo_text: str) -> list[str]:
  """The collective operations named in an HLO module's text."""
  return [op for op in COLLECTIVES if op in hlo_text]


def _setup():
  import jax

  jax.config.update("jax_enable_x64", True)
  jax.config.update("jax_numpy_rank_promotion", "raise")
  if len(jax.devices()) != DEVICES:
    raise RuntimeError(
        f"expected {DEVICES} host devices, got {len(jax.devices())}: set "
        f"XLA_FLAGS=--xla_force_host_platform_device_count={DEVICES}")
  # Auto axes: the shardings of intermediates are left to XLA's partitioner, as with a
  # NamedSharding passed to jit.
  return jax.make_mesh((DEVICES,), ("d",), axis_types=(jax.sharding.AxisType.Auto,))


def _random(shape, dtype, seed):
  import jax.numpy as jnp
  import numpy as np

  rng = np.random.default_rng(seed)
  if np.issubdtype(np.dtype(dtype), np.integer):
    return jnp.asarray(rng.integers(-50, 50, shape), dtype)
  return jnp.asarray(rng.standard_normal(shape), dtype)


def _spec(ndim, axis):
  from jax.sharding import PartitionSpec

  parts = [None] * ndim
  parts[axis] = "d"
  return PartitionSpec(*parts)


def _check(name, fn, args, in_axes, out_axes, mesh, *, no_collectives, rtol=1e-12):
  """Runs ``fn`` on ``args`` sharded along ``in_axes`` (None: replicated) and on one device;
  checks the values, the output shardings along ``out_axes`` and, if asked, the absence of
  collectives in the compiled program."""
  import jax
  import numpy as np
  from jax.sharding import NamedSharding, PartitionSpec

  placed = []
  for a, axis in zip(args, in_axes):
    spec = PartitionSpec() if axis is None else _spec(a.ndim, axis)
    placed.append(jax.device_put(a, NamedSharding(mesh, spec)))
  compiled = jax.jit(fn).lower(*placed).compile()
  found = collectives_in(compiled.as_text())
  if no_collectives and found:
    raise AssertionError(f"{name}: collectives {found} in the compiled program")
  out = compiled(*placed)
  single = jax.jit(fn)(*(jax.device_put(a, jax.devices()[0]) for a in args))
  outs, singles = jax.tree.leaves(out), jax.tree.leaves(single)
  axes = out_axes if isinstance(out_axes, tuple) else (out_axes,) * len(outs)
  for o, s, axis in zip(outs, singles, axes):
    expected = None if axis is None else NamedSharding(mesh, _spec(o.ndim, axis))
    if axis is not None and not o.sharding.is_equivalent_to(expected, o.ndim):
      raise AssertionError(f"{name}: output sharded as {o.sharding}, expected {expected}")
    if np.issubdtype(o.dtype, np.floating):
      np.testing.assert_allclose(np.asarray(o, np.float64), np.asarray(s, np.float64),
                                 rtol=rtol, atol=rtol, err_msg=name)
    else:
      np.testing.assert_array_equal(np.asarray(o), np.asarray(s), err_msg=name)
  print(f"{name}: ok ({'collectives ' + str(found) if found else 'no collectives'})")


def batch_cases():
  """(name, fn, args, batch axis of every arg (None: replicated), batch axis of the output)."""
  import jax.numpy as jnp

  import jaxup

  f64, f32, i32 = jnp.float64, jnp.float32, jnp.int32
  n = DEVICES
  x2 = _random((n, 6, 5, 4), f64, 0)
  x2_nchw = _random((n, 4, 6, 5), f64, 1)
  x1 = _random((n, 9, 4), f64, 2)
  x3 = _random((n, 4, 3, 5, 2), f64, 3)
  k2f = _random((3, 3, 4, 6), f64, 4)
  kdw = _random((3, 3, 1, 8), f64, 4)  # depthwise, channel multiplier 2
  k1 = _random((3, 4, 3), f64, 5)
  k3 = _random((2, 3, 2, 2, 3), f64, 6)
  kt = _random((3, 3, 3, 4), f64, 7)  # conv_transpose: (*K, C_out, C_in=4)
  cases = [
      ("conv 2-D NHWC stride 2",
       lambda x, k: jaxup.conv(x, k, stride=2, padding=1), (x2, k2f), (0, None), 0),
      ("conv 2-D NCHW dilation 2 depthwise",
       lambda x, k: jaxup.conv(x, k, padding="SAME", dilation=2, groups=4, layout="NCHW"),
       (x2_nchw, kdw), (0, None), 0),
      ("conv 1-D", lambda x, k: jaxup.conv(x, k, stride=2), (x1, k1), (0, None), 0),
      ("conv 3-D", lambda x, k: jaxup.conv(x, k, padding=1), (x3, k3), (0, None), 0),
      ("conv_transpose 2-D stride 2",
       lambda x, k: jaxup.conv_transpose(x, k, stride=2, padding=1, output_padding=1),
       (x2, kt), (0, None), 0),
      ("conv_transpose 1-D NCW", lambda x, k: jaxup.conv_transpose(
          x, k, stride=3, layout="NCW"), (jnp.swapaxes(x1, 1, 2), k1[:, :, :4].swapaxes(1, 2)),
       (0, None), 0),
      ("upsample_nearest", lambda x: jaxup.upsample_nearest(x, (2, 3)), (x2,), (0,), 0),
      ("upsample_nearest int32 WCNH", lambda x: jaxup.upsample_nearest(
          x, 2, layout="WCNH"), (_random((5, 4, n, 3), i32, 8),), (2,), 2),
      ("bed_of_nails", lambda x: jaxup.bed_of_nails(x, 2, layout="NCHW"), (x2_nchw,), (0,), 0),
      ("resize linear", lambda x: jaxup.resize(x, (12, 7), method="linear"), (x2,), (0,), 0),
      ("resize cubic antialias down", lambda x: jaxup.resize(
          x, (3, 2), method="cubic", antialias=True), (x2,), (0,), 0),
      ("resize nearest 3-D", lambda x: jaxup.resize(x, scale=2.0, method="nearest"),
       (x3,), (0,), 0),
      ("resize linear align_corners NCHW", lambda x: jaxup.resize(
          x, 11, method="linear", align_corners=True, layout="NCHW"), (x2_nchw,), (0,), 0),
      ("pixel_shuffle", lambda x: jaxup.pixel_shuffle(x, 2, layout="NCHW"), (x2_nchw,), (0,), 0),
      ("pixel_unshuffle DCR", lambda x: jaxup.pixel_unshuffle(
          x, (2, 1), order="DCR"), (_random((n, 6, 5, 2), f32, 9),), (0,), 0),
      ("max_pool", lambda x: jaxup.max_pool(x, 3, stride=2, padding=1), (x2,), (0,), 0),
      ("max_pool with indices ceil_mode", lambda x: jaxup.max_pool(
          x, 2, ceil_mode=True, return_indices=True), (x2,), (0,), (0, 0)),
      ("max_unpool", lambda v, i: jaxup.max_unpool(v, i, 2), (
          _random((n, 3, 2, 4), f64, 10), _random((n, 3, 2, 4), i32, 11) % 24), (0, 0), 0),
      ("max_unpool overlapping", lambda v, i: jaxup.max_unpool(v, i, 3, stride=2), (
          _random((n, 3, 2, 4), f64, 12), _random((n, 3, 2, 4), i32, 13) % 35), (0, 0), 0),
      ("indices_to_tf", lambda i: jaxup.indices_to_tf(
          i, (6, 4), include_batch_in_index=True), (_random((n, 3, 2, 4), i32, 14) % 24,),
       (0,), 0),
      ("indices_from_tf", lambda i: jaxup.indices_from_tf(i, (6, 4)),
       (_random((n, 3, 2, 4), i32, 15) % 96,), (0,), 0),
      ("indices_to_onnx", lambda i: jaxup.indices_to_onnx(
          i, (6, 4), storage_order=1, layout="NCHW"), (_random((n, 4, 3, 2), i32, 16) % 24,),
       (0,), 0),
      ("indices_from_onnx", lambda i: jaxup.indices_from_onnx(i, (6, 4), layout="NCHW"),
       (_random((n, 4, 3, 2), i32, 17) % 500,), (0,), 0),
      ("upsample_conv fused", lambda x, k: jaxup.upsample_conv(x, k, 2, padding=1, fused=True),
       (x2, k2f), (0, None), 0),
      ("upsample_conv unfused NCHW", lambda x, k: jaxup.upsample_conv(
          x, k, (2, 1), padding="SAME", fused=False, layout="NCHW"), (x2_nchw, k2f), (0, None), 0),
      ("upfirdn up 2 down 3", lambda x, f: jaxup.upfirdn(
          x, f, up=2, down=3, padding=((2, 1), (0, -1))), (x2, _random((4,), f64, 18)),
       (0, None), 0),
      ("upfirdn 2-D filter NCHW", lambda x, f: jaxup.upfirdn(
          x, f, up=(1, 2), padding=1, layout="NCHW"), (x2_nchw, _random((3, 2), f64, 19)),
       (0, None), 0),
      ("blur_upsample", lambda x: jaxup.blur_upsample(x, 2), (x2,), (0,), 0),
      ("blur_upsample 1-D", lambda x: jaxup.blur_upsample(x, 3, filter=(1.0, 2.0, 1.0),
                                                         layout="NWC"),
       (x1,), (0,), 0),
      ("blur_pool reflect", lambda x: jaxup.blur_pool(x, 2), (x2,), (0,), 0),
      ("blur_pool replicate 3-D", lambda x: jaxup.blur_pool(
          x, 2, filter=(1.0, 2.0, 1.0), padding_mode="replicate"), (x3,), (0,), 0),
      # The grid shares x's batch axis: each item samples its own image.
      ("grid_sample bilinear", lambda x, g: jaxup.grid_sample(x, g), (
          x2, _random((n, 3, 7, 2), f64, 20)), (0, 0), 0),
      ("grid_sample bicubic reflection NCHW", lambda x, g: jaxup.grid_sample(
          x, g, mode="bicubic", padding_mode="reflection", layout="NCHW"),
       (x2_nchw, _random((n, 4, 2, 2), f64, 21)), (0, 0), 0),
      ("grid_sample nearest 3-D", lambda x, g: jaxup.grid_sample(x, g, mode="nearest"), (
          x3, _random((n, 2, 3, 2, 3), f64, 22)), (0, 0), 0),
      ("affine_grid", lambda t: jaxup.affine_grid(t, (5, 3)), (_random((n, 2, 3), f64, 23),),
       (0,), 0),
      ("scale_and_translate", lambda x: jaxup.scale_and_translate(
          x, (9, 4), scale=(1.5, 0.75), translation=(0.5, -0.25), method="linear"),
       (x2,), (0,), 0),
      ("scale_and_translate lanczos3 one axis", lambda x: jaxup.scale_and_translate(
          x, 11, scale=2.0, translation=1.0, method="lanczos3", axes="W", layout="NCHW"),
       (x2_nchw,), (0,), 0),
  ]
  return cases


# Every rank, every layout family (channels last and first, unbatched axes elsewhere), with
# non-overlapping windows (the elementwise path) and overlapping ones (the scatter path).
UNPOOL_LAYOUTS = {
    1: ("NWC", "NCW", "WNC"),
    2: ("NHWC", "NCHW", "HWNC", "NHW"),
    3: ("NDHWC", "NCDHW", "DNHWC"),
}
UNPOOL_SIZES = {1: (9,), 2: (6, 5), 3: (4, 5, 3)}


def grouped_conv_cases():
  """Grouped convolutions with 1 < groups < channels: XLA's SPMD partitioner gathers the batch
  for them (values still equal one device's)."""
  import jax.numpy as jnp

  import jaxup

  x = _random((DEVICES, 6, 5, 4), jnp.float64, 0)
  k = _random((3, 3, 2, 6), jnp.float64, 4)
  return [("conv groups 2", lambda x, k: jaxup.conv(x, k, stride=2, padding=1, groups=2),
           (x, k), (0, None), 0)]


def unpool_cases():
  import jax.numpy as jnp

  import jaxup

  cases = []
  for nd, layouts in UNPOOL_LAYOUTS.items():
    sizes = UNPOOL_SIZES[nd]
    for layout in layouts:
      spatial = iter(sizes)
      shape = tuple(DEVICES if c == "N" else 3 if c == "C" else next(spatial) for c in layout)
      batch = layout.index("N")
      x = _random(shape, jnp.float64, len(cases))
      for window, stride, padding in ((2, None, 0), (3, 2, 1)):
        def fn(x, window=window, stride=stride, padding=padding, layout=layout, sizes=sizes):
          values, indices = jaxup.max_pool(x, window, stride=stride, padding=padding,
                                           return_indices=True, layout=layout)
          return jaxup.max_unpool(values, indices, window, stride=stride, padding=padding,
                                  output_size=sizes, layout=layout)
        cases.append((f"max_pool -> max_unpool {layout} window {window} stride {stride}",
                      fn, (x,), (batch,), batch))
  return cases


def spatial_cases():
  """A (1, 16, 6, 5, 2) volume sharded along its depth over 8 devices."""
  import jax.numpy as jnp

  import jaxup

  x = _random((1, 16, 6, 5, 2), jnp.float64, 20)
  k = _random((3, 3, 3, 2, 4), jnp.float64, 21)
  kt = _random((3, 2, 2, 4, 2), jnp.float64, 22)

  def pool_unpool(v):
    values, indices = jaxup.max_pool(v, 2, return_indices=True)
    overlapping_values, overlapping = jaxup.max_pool(v, 3, stride=2, padding=1,
                                                     return_indices=True)
    return (jaxup.max_unpool(values, indices, 2, output_size=(16, 6, 5)),
            jaxup.max_unpool(overlapping_values, overlapping, 3, stride=2, padding=1,
                             output_size=(16, 6, 5)))

  return [
      ("conv over sharded depth", lambda v, w: jaxup.conv(v, w, padding=1), (x, k), (1, None),
       1),
      ("conv stride 2 over sharded depth", lambda v, w: jaxup.conv(v, w, stride=2, padding=1),
       (x, k), (1, None), None),
      ("conv_transpose over sharded depth", lambda v, w: jaxup.conv_transpose(
          v, w, stride=2, padding=1, output_padding=1), (x, kt), (1, None), None),
      ("resize linear over sharded depth", lambda v: jaxup.resize(v, (32, 9, 10), method="linear"), (x,), (1,),
       None),
      ("resize cubic antialias over sharded depth", lambda v: jaxup.resize(
          v, (5, 6, 5), method="cubic", antialias=True), (x,), (1,), None),
      ("max_pool -> max_unpool over sharded depth", pool_unpool, (x,), (1,), (None, None)),
  ]


HALO_ONLY = ("collective-permute",)
# Halo-only and sharded, but per-device temp memory above temp_bound (1.05-1.5x of it with
# jax 0.10.2; docs/guides/sharding.md lists them): cubic resizes and reflect padding, whose
# gradients sum many shifted selects, and max_pool's running (value, index) pair.
MEMORY_EXCEPTIONS = ("blur_pool reflect", "max_pool with indices", "resize cubic 2x on 2x4",
                     "depth sharded resize cubic 2x")


def temp_bound(single_temp: int, local_bytes: int, devices: int) -> int:
  """The per-device XLA temp memory a halo-only program may use: the one-device figure over
  the device count, plus three per-device slabs of the largest of input and output (the
  halo-extended copies and the exchanged halos), plus 4 KiB of fixed scratch. A program
  that gathers an axis holds at least the whole array (``devices`` slabs)."""
  return single_temp // devices + 3 * local_bytes + 4 * 1024


def _with_grad(f):
  """``v -> (f(v), d/dv sum(sin(f(v))))``: the operator and its gradient in one program."""
  import jax
  import jax.numpy as jnp

  def both(v):
    return f(v), jax.grad(lambda u: jnp.sum(jnp.sin(f(u))))(v)
  return both


def halo_cases():
  """(name, fn of one array, the array, mesh name, its PartitionSpec, spec of the outputs).

  The output spec is that of the input (an upsampler scales the sharded axes, it does not
  move them). ``fn`` returns the operator's output and its gradient in ``x``."""
  import jax.numpy as jnp
  from jax.sharding import PartitionSpec as P

  import jaxup

  f64 = jnp.float64
  x1 = _random((1, 512, 8), f64, 30)  # NWC, W sharded 8 ways: 64 positions per device
  k1 = {k: _random((k, 8, 8), f64, 31 + k) for k in (2, 3, 4)}
  k1dw = _random((3, 1, 8), f64, 35)

  def pool_unpool(v):
    values, indices = jaxup.max_pool(v, 2, return_indices=True, layout="NWC")
    return jaxup.max_unpool(values, indices, 2, layout="NWC")

  def pool_indices(v):
    values, indices = jaxup.max_pool(v, 3, stride=2, padding=1, return_indices=True,
                                     layout="NWC")
    return values * indices.astype(v.dtype)  # the indices reach the output (and its sharding)

  one_d = {
      "conv k3": lambda v: jaxup.conv(v, k1[3], padding=1, layout="NWC"),
      "conv k3 stride 2": lambda v: jaxup.conv(v, k1[3], stride=2, padding=1, layout="NWC"),
      "conv k2 stride 2": lambda v: jaxup.conv(v, k1[2], stride=2, layout="NWC"),
      "conv depthwise": lambda v: jaxup.conv(v, k1dw, padding=1, groups=8, layout="NWC"),
      "conv_transpose k3 s2 p1 op1": lambda v: jaxup.conv_transpose(
          v, k1[3], stride=2, padding=1, output_padding=1, layout="NWC"),
      "conv_transpose k3 s2 p1 op1 xla": lambda v: jaxup.conv_transpose(
          v, k1[3], stride=2, padding=1, output_padding=1, lowering="xla", layout="NWC"),
      "conv_transpose k4 s2 p1": lambda v: jaxup.conv_transpose(v, k1[4], stride=2, padding=1, layout="NWC"),
      "conv_transpose k2 s2": lambda v: jaxup.conv_transpose(v, k1[2], stride=2, layout="NWC"),
      "conv_transpose k3 s2 SAME": lambda v: jaxup.conv_transpose(
          v, k1[3], stride=2, padding="SAME", layout="NWC"),
      "upsample_conv 2x fused": lambda v: jaxup.upsample_conv(v, k1[3], 2, padding=1,
                                                              fused=True, layout="NWC"),
      "upsample_nearest": lambda v: jaxup.upsample_nearest(v, 2, layout="NWC"),
      "bed_of_nails": lambda v: jaxup.bed_of_nails(v, 2, layout="NWC"),
      "resize linear 2x": lambda v: jaxup.resize(v, 1024, method="linear", layout="NWC"),
      "resize cubic 2x": lambda v: jaxup.resize(v, 1024, method="cubic", layout="NWC"),
      "resize lanczos3 2x": lambda v: jaxup.resize(v, 1024, method="lanczos3", layout="NWC"),
      "resize linear 1.5x": lambda v: jaxup.resize(v, 768, method="linear", layout="NWC"),
      "resize linear 1/2": lambda v: jaxup.resize(v, 256, method="linear", layout="NWC"),
      "resize linear antialias 1/2": lambda v: jaxup.resize(v, 256, method="linear",
                                                            antialias=True, layout="NWC"),
      "resize cubic 3/4": lambda v: jaxup.resize(v, 384, method="cubic", layout="NWC"),
      "resize area 1/2": lambda v: jaxup.resize(v, 256, method="area", layout="NWC"),
      "resize nearest 1/4": lambda v: jaxup.resize(v, 128, method="nearest", layout="NWC"),
      "resize cubic antialias 1/2": lambda v: jaxup.resize(v, 256, method="cubic",
                                                           antialias=True, layout="NWC"),
      "resize lanczos3 antialias 1/4": lambda v: jaxup.resize(v, 128, method="lanczos3",
                                                              antialias=True, layout="NWC"),
      # Taps that do not repeat with a short period: gathers batched over blocks.
      "resize linear align_corners 2x": lambda v: jaxup.resize(
          v, 1024, method="linear", align_corners=True, layout="NWC"),
      "resize cubic align_corners 2x": lambda v: jaxup.resize(
          v, 1024, method="cubic", align_corners=True, layout="NWC"),
      "resize linear align_corners 1/2": lambda v: jaxup.resize(
          v, 256, method="linear", align_corners=True, layout="NWC"),
      "resize linear 25/16": lambda v: jaxup.resize(v, 800, method="linear", layout="NWC"),
      "resize nearest 25/16": lambda v: jaxup.resize(v, 800, method="nearest", layout="NWC"),
      "resize lanczos3 antialias 512 -> 200": lambda v: jaxup.resize(
          v, 200, method="lanczos3", antialias=True, layout="NWC"),
      "scale_and_translate 2x": lambda v: jaxup.scale_and_translate(
          v, 1024, scale=2.0, translation=0.0, method="linear", layout="NWC"),
      "upfirdn up 2": lambda v: jaxup.upfirdn(v, jnp.arange(1.0, 5.0), up=2, padding=((2, 1),), layout="NWC"),
      "blur_upsample 2x": lambda v: jaxup.blur_upsample(v, 2, layout="NWC"),
      "blur_pool reflect": lambda v: jaxup.blur_pool(v, 2, layout="NWC"),
      "pixel_shuffle": lambda v: jaxup.pixel_shuffle(v[..., :2].repeat(2, -1), 2, layout="NWC"),
      "pixel_unshuffle": lambda v: jaxup.pixel_unshuffle(v, 2, layout="NWC"),
      "max_pool with indices": pool_indices,
      "max_pool -> max_unpool": pool_unpool,
  }
  w_sharded = P(None, "d")
  cases = [(f"1-D NWC {name}", _with_grad(f), x1, "8", w_sharded, w_sharded)
           for name, f in one_d.items()]

  # The headline rows on a (1, 64, 4, 4, 2) volume sharded along its depth.
  v3 = _random((1, 64, 4, 4, 2), f64, 40)
  k3 = _random((3, 3, 3, 2, 2), f64, 41)
  three_d = {
      "conv_transpose k3 s2 p1 op1": lambda v: jaxup.conv_transpose(
          v, k3, stride=2, padding=1, output_padding=1),
      "upsample_conv 2x 3x3x3": lambda v: jaxup.upsample_conv(v, k3, 2, padding=1),
      "conv stride 2": lambda v: jaxup.conv(v, k3, stride=2, padding=1),
      "resize linear 2x": lambda v: jaxup.resize(v, scale=2.0, method="linear"),
      "resize cubic 2x": lambda v: jaxup.resize(v, scale=2.0, method="cubic"),
      "resize trilinear align_corners 2x": lambda v: jaxup.resize(
          v, scale=2.0, method="linear", align_corners=True),
      "resize trilinear antialias 64 -> 24": lambda v: jaxup.resize(
          v, (24, 4, 4), method="linear", antialias=True),
  }
  cases += [(f"3-D NDHWC depth sharded {name}", _with_grad(f), v3, "8", P(None, "d"),
             P(None, "d")) for name, f in three_d.items()]

  # 2-D on a 2x4 mesh: batch and height (channels first), and height and width.
  x2 = _random((2, 3, 16, 6), f64, 50)
  k2 = _random((3, 3, 3, 3), f64, 51)
  nchw = {
      "conv_transpose k3 s2 p1 op1": lambda v: jaxup.conv_transpose(
          v, k2, stride=2, padding=1, output_padding=1, layout="NCHW"),
      "upsample_conv 2x": lambda v: jaxup.upsample_conv(v, k2, 2, padding=1, layout="NCHW"),
      "resize linear 2x": lambda v: jaxup.resize(v, scale=2.0, method="linear",
                                                 layout="NCHW"),
      "resize linear align_corners 2x": lambda v: jaxup.resize(
          v, scale=2.0, method="linear", align_corners=True, layout="NCHW"),
  }
  cases += [(f"2-D NCHW batch x height on 2x4 {name}", _with_grad(f), x2, "2x4",
             P("b", None, "d"), P("b", None, "d")) for name, f in nchw.items()]
  x2hw = _random((1, 16, 16, 3), f64, 52)
  nhwc = {
      "conv_transpose k4 s2 p1": lambda v: jaxup.conv_transpose(
          v, _random((4, 4, 3, 3), f64, 53), stride=2, padding=1),
      "resize cubic 2x on 2x4": lambda v: jaxup.resize(v, scale=2.0, method="cubic"),
      "resize cubic align_corners 2x": lambda v: jaxup.resize(
          v, scale=2.0, method="cubic", align_corners=True),
      "resize linear 16 -> 24": lambda v: jaxup.resize(v, (24, 24), method="linear"),
      "conv stride 2": lambda v: jaxup.conv(v, k2, stride=2, padding=1),
  }
  cases += [(f"2-D NHWC height x width on 2x4 {name}", _with_grad(f), x2hw, "2x4",
             P(None, "b", "d"), P(None, "b", "d")) for name, f in nhwc.items()]
  return cases


def exception_cases():
  """Documented exceptions: the one-device numbers, any communication, any output sharding.

  An output axis the shard count does not divide comes back replicated (jit outputs are
  evenly sharded); a resize whose output the shard count cannot split evenly into blocks of
  the input's (100 positions from 64 on 8 devices) and ``grid_sample`` read through gathers,
  which the partitioner answers by gathering or all-reducing the axis; overlapping ``max_unpool`` scatters; shards smaller
  than a halo still give the right numbers."""
  import jax.numpy as jnp
  from jax.sharding import PartitionSpec as P

  import jaxup

  f64 = jnp.float64
  x1 = _random((1, 64, 3), f64, 60)
  k3 = _random((3, 3, 3), f64, 61)

  def overlapping_unpool(v):
    values, indices = jaxup.max_pool(v, 3, stride=2, padding=1, return_indices=True, layout="NWC")
    return jaxup.max_unpool(values, indices, 3, stride=2, padding=1, output_size=64, layout="NWC")

  grid = jnp.linspace(-1.0, 1.0, 64 * 1).reshape(1, 64, 1)
  spec = P(None, "d")
  return [
      ("uneven output, conv_transpose k3 s2 p1 (63 positions)", _with_grad(
          lambda v: jaxup.conv_transpose(v[:, :32], k3, stride=2, padding=1, layout="NWC")), x1, "8", spec),
      ("resize linear align_corners to 100 positions (gcd 4 with 64)", _with_grad(
          lambda v: jaxup.resize(v, 100, method="linear", align_corners=True, layout="NWC")), x1, "8", spec),
      ("max_pool -> overlapping max_unpool", _with_grad(overlapping_unpool), x1, "8", spec),
      ("grid_sample with a local grid", _with_grad(
          lambda v: jaxup.grid_sample(v, grid * 0.9, layout="NWC")), x1, "8", spec),
      ("shards smaller than the halo, resize cubic 2x of 8 positions", _with_grad(
          lambda v: jaxup.resize(v[:, ::8], 16, method="cubic", layout="NWC")), x1, "8", spec),
      ("shards smaller than the halo, conv k5 of 1 position per device", _with_grad(
          lambda v: jaxup.conv(v[:, ::8], _random((5, 3, 3), f64, 62), padding=2, layout="NWC")),
       x1, "8", spec),
  ]


def _check_halo(name, fn, x, mesh, in_spec, out_spec, *, strict=True):
  """``fn(x)`` with ``x`` placed by ``in_spec``: values equal to one device; if ``strict``,
  outputs sharded as ``out_spec``, halo-only collectives and temp memory within bound."""
  import jax
  import numpy as np
  from jax.sharding import NamedSharding

  placed = jax.device_put(x, NamedSharding(mesh, in_spec))
  compiled = jax.jit(fn).lower(placed).compile()
  found = collectives_in(compiled.as_text())
  single_x = jax.device_put(x, jax.devices()[0])
  single = jax.jit(fn).lower(single_x).compile()
  outs, singles = jax.tree.leaves(compiled(placed)), jax.tree.leaves(single(single_x))
  for o, s in zip(outs, singles):
    np.testing.assert_allclose(np.asarray(o), np.asarray(s), rtol=1e-9, atol=1e-9,
                               err_msg=name)
  temp = compiled.memory_analysis().temp_size_in_bytes
  single_temp = single.memory_analysis().temp_size_in_bytes
  devices = mesh.devices.size
  local = max([x.nbytes] + [o.nbytes for o in outs]) // devices
  bound = temp_bound(single_temp, local, devices)
  summary = (f"temp {temp} B per device, one device {single_temp} B, bound {bound} B; "
             f"collectives {found or 'none'}")
  if strict:
    extra = [op for op in found if op not in HALO_ONLY]
    if extra:
      raise AssertionError(f"{name}: collectives {extra} besides halo exchange ({summary})")
    expected = NamedSharding(mesh, out_spec)
    for o in outs:
      if not o.sharding.is_equivalent_to(expected, o.ndim):
        raise AssertionError(f"{name}: output sharded as {o.sharding.spec}, expected "
                             f"{out_spec}")
    if temp > bound and not name.endswith(MEMORY_EXCEPTIONS):
      raise AssertionError(f"{name}: {summary}")
    print(f"{name}: halo-only, sharded {out_spec}, {summary}")
  else:
    specs = sorted({str(o.sharding.spec) for o in outs})
    print(f"{name}: one-device numbers, outputs {', '.join(specs)}, {summary}")


def run_halo() -> int:
  import jax

  meshes = {
      "8": jax.make_mesh((DEVICES,), ("d",), axis_types=(jax.sharding.AxisType.Auto,)),
      "2x4": jax.make_mesh((2, DEVICES // 2), ("b", "d"),
                           axis_types=(jax.sharding.AxisType.Auto,) * 2),
  }
  cases = halo_cases()
  for name, fn, x, mesh, in_spec, out_spec in cases:
    _check_halo(name, fn, x, meshes[mesh], in_spec, out_spec)
  exceptions = exception_cases()
  for name, fn, x, mesh, in_spec in exceptions:
    _check_halo(name, fn, x, meshes[mesh], in_spec, None, strict=False)
  return len(cases) + len(exceptions)


def run_shard_map(mesh) -> int:
  """Inside ``shard_map`` (batch split over the mesh, the kernel the same everywhere), every
  operator's output and its gradients in the input and the kernel equal one device's."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jax.sharding import NamedSharding
  from jax.sharding import PartitionSpec as P

  import jaxup

  x = _random((8, 12, 12, 3), jnp.float64, 70)
  w = _random((3, 3, 3, 3), jnp.float64, 71)
  ops = {
      "conv": lambda v, k: jaxup.conv(v, k, padding=1),
      "conv stride 2": lambda v, k: jaxup.conv(v, k, stride=2, padding=1),
      "conv_transpose k3 s2": lambda v, k: jaxup.conv_transpose(v, k, stride=2, padding=1,
                                                                output_padding=1),
      "upsample_conv": lambda v, k: jaxup.upsample_conv(v, k, 2, padding=1),
      "resize linear 2x": lambda v, k: jaxup.resize(v, (24, 24), method="linear") * k[0, 0, 0, 0],
      "resize linear antialias 1/2": lambda v, k: jaxup.resize(
          v, (6, 6), method="linear", antialias=True) * k[0, 0, 0, 0],
  }
  placed = jax.device_put(x, NamedSharding(mesh, P("d")))
  for name, op in ops.items():
    def loss(v, k, op=op):
      return jnp.sum(jnp.sin(op(v, k)))

    def grads(v, k, loss=loss):
      gx, gk = jax.grad(loss, (0, 1))(v, k)
      return gx, gk  # the gradient of an unvarying kernel comes back summed over devices

    sharded = jax.jit(jax.shard_map(lambda v, k, op=op: (op(v, k), *grads(v, k)), mesh=mesh,
                                    in_specs=(P("d"), P()), out_specs=(P("d"), P("d"), P())))
    single = (op(x, w), *jax.grad(loss, (0, 1))(x, w))
    for got, want in zip(sharded(placed, w), single):
      np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-9, atol=1e-9,
                                 err_msg=name)
    print(f"{name}: shard_map equals one device")
  return len(ops)


def main(group: str) -> None:
  mesh = _setup()
  if group == "halo":
    print(f"checked {run_halo()} cases")
    return
  if group == "shard_map":
    print(f"checked {run_shard_map(mesh)} cases")
    return
  cases = {"batch": batch_cases, "unpool": unpool_cases, "spatial": spatial_cases,
           "grouped": grouped_conv_cases}[group]()
  for name, fn, args, in_axes, out_axes in cases:
    _check(name, fn, args, in_axes, out_axes, mesh,
           no_collectives=group in ("batch", "unpool"), rtol=1e-9)
  print(f"checked {len(cases)} cases")


if __name__ == "__main__":
  main(sys.argv[1])
