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
      ("blur_upsample 1-D", lambda x: jaxup.blur_upsample(x, 3, filter=(1.0, 2.0, 1.0)),
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


def main(group: str) -> None:
  mesh = _setup()
  cases = {"batch": batch_cases, "unpool": unpool_cases, "spatial": spatial_cases,
           "grouped": grouped_conv_cases}[group]()
  for name, fn, args, in_axes, out_axes in cases:
    _check(name, fn, args, in_axes, out_axes, mesh,
           no_collectives=group in ("batch", "unpool"), rtol=1e-9)
  print(f"checked {len(cases)} cases")


if __name__ == "__main__":
  main(sys.argv[1])
