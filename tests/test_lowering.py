"""Convolution lowerings: every formulation equals the definition, and no derivative of conv or
conv_transpose emits an input-dilated convolution.

The parity grid runs in a child process: a compiler abort there fails one test instead of the
whole run.
"""

import itertools
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

import jaxup
from jaxup._src import lowering
from tests.helpers import grid_size, random
from tests.test_conv import _random_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORCED = ("xla", "matmul")

# ----------------------------------------------------------------------------------------------
# NumPy references, written from the definition: y[o] = sum_k x_pad[o s + k d] w[k].


def _views(x_pad, k_sizes, s, d, outs):
  for tap in itertools.product(*(range(k) for k in k_sizes)):
    index = (slice(None),) + tuple(slice(t * di, t * di + (o - 1) * si + 1, si)
                                   for t, si, di, o in zip(tap, s, d, outs)) + (slice(None),)
    yield tap, index


def np_conv_family(x, w, ct, s, pads, d, groups):
  """Channels-last conv, its transpose in x applied to ``ct`` and its transpose in w."""
  n = x.ndim - 2
  k_sizes = w.shape[:n]
  cg, c_out = w.shape[-2:]
  og = c_out // groups
  x_pad = np.pad(x, [(0, 0), *pads, (0, 0)])
  outs = [(x_pad.shape[1 + a] - d[a] * (k_sizes[a] - 1) - 1) // s[a] + 1 for a in range(n)]
  y = np.zeros((x.shape[0], *outs, c_out))
  gx_pad = np.zeros_like(x_pad)
  gw = np.zeros_like(w)
  for tap, index in _views(x_pad, k_sizes, s, d, outs):
    view = x_pad[index]
    for g in range(groups):
      ci, co = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
      y[..., co] += view[..., ci] @ w[tap][:, co]
      gx = ct[..., co] @ w[tap][:, co].T
      gx_pad[index[:-1] + (ci,)] += gx
      gw[tap][:, co] += view[..., ci].reshape(-1, cg).T @ ct[..., co].reshape(-1, og)
  crop = (slice(None),) + tuple(slice(lo, lo + size) for (lo, _), size in
                                zip(pads, x.shape[1:-1])) + (slice(None),)
  return y, gx_pad[crop], gw


def _check_grid(seed: int, count: int) -> None:
  """Random configs: every lowering of conv, conv_transpose and the kernel gradient against
  the NumPy definition and lax.conv_general_dilated, in the config's layout and dtype."""
  rng = np.random.default_rng(seed)
  ran = 0
  while ran < count:
    n, groups, c_in, c_out, k, s, d, sizes, p, _, layout, dtype = _random_config(rng, False)
    pads = [pi if isinstance(pi, tuple) else (pi, pi) for pi in p]
    if any(sz + lo + hi < di * (ki - 1) + 1 for sz, (lo, hi), ki, di in zip(sizes, pads, k, d)):
      continue
    x = rng.standard_normal((2, *sizes, c_in))
    w = rng.standard_normal((*k, c_in // groups, c_out))
    outs = jaxup.conv_output_size(sizes, k, stride=s, padding=pads, dilation=d)
    ct = rng.standard_normal((2, *outs, c_out))
    y_ref, gx_ref, gw_ref = np_conv_family(x, w, ct, s, pads, d, groups)
    channels_first = layout[1] == "C"
    move = (lambda a: np.moveaxis(a, -1, 1)) if channels_first else (lambda a: a)
    back = (lambda a: np.moveaxis(np.asarray(a), 1, -1)) if channels_first else np.asarray
    kw = dict(stride=s, padding=p, dilation=d, groups=groups, layout=layout)

    def run(x, w, ct):
      out = {}
      for low in ("auto",) + FORCED:
        y, vjp = jax.vjp(lambda x, w: jaxup.conv(x, w, lowering=low, **kw), x, w)
        gx, gw = vjp(ct)
        up = jaxup.conv_transpose(ct, w, output_size=sizes, lowering=low, **kw)
        out[low] = (y, gx, gw, up)
      # The correlation forms around im2col, which "auto" reaches only inside larger programs.
      geom = lowering.Geometry(sizes, tuple(outs), k, s, tuple(lo for lo, _ in pads), d, groups)
      cl = (lambda a: jnp.moveaxis(a, 1, -1)) if channels_first else (lambda a: a)
      forms = ("phases", "lax") + (("subpixel",) if all(v == 1 for v in d) else ())
      for form in forms:
        up = lowering.transpose_by(form, cl(ct), w, geom, inner="matmul")
        out[form] = (out["auto"][0], out["auto"][1], out["auto"][2],
                     jnp.moveaxis(up, -1, 1) if channels_first else up)
      return out

    xs, ws, cts = (jnp.asarray(move(x), dtype), jnp.asarray(w, dtype),
                   jnp.asarray(move(ct), dtype))
    got = jax.jit(run)(xs, ws, cts)
    lax_y = lax.conv_general_dilated(
        jnp.asarray(x, dtype), ws, s, pads, rhs_dilation=d, feature_group_count=groups,
        dimension_numbers=lowering._CHANNELS_LAST[n])
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for low, (y, gx, gw, up) in got.items():
      msg = f"{low} {(n, groups, k, s, d, sizes, p, layout, np.dtype(dtype).name)}"
      assert y.dtype == gx.dtype == gw.dtype == up.dtype == dtype, msg
      np.testing.assert_allclose(back(y), y_ref, rtol=tol, atol=tol, err_msg="conv " + msg)
      np.testing.assert_allclose(back(y), lax_y, rtol=tol, atol=tol, err_msg="lax " + msg)
      np.testing.assert_allclose(back(gx), gx_ref, rtol=tol, atol=tol, err_msg="vjp x " + msg)
      np.testing.assert_allclose(back(up), gx_ref, rtol=tol, atol=tol,
                                 err_msg="conv_transpose " + msg)
      np.testing.assert_allclose(gw, gw_ref, rtol=tol, atol=tol, err_msg="vjp kernel " + msg)
    ran += 1


def _in_child(code: str, timeout: int = 600) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAX_ENABLE_X64="1", JAX_NUMPY_RANK_PROMOTION="raise",
             PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=timeout)


def test_every_lowering_matches_the_definition_on_a_random_grid():
  proc = _in_child(f"from tests.test_lowering import _check_grid; _check_grid(7, {grid_size(30)})")
  assert proc.returncode == 0, proc.stderr[-4000:]


def test_strided_conv_gradient_that_aborted_xla_now_runs():
  # jax.grad of lax.conv_general_dilated here is an input-dilated convolution on which
  # XLA:CPU aborts the process (float32 and float64).
  code = """
import jax, jax.numpy as jnp, numpy as np, jaxup
for dt in (jnp.float32, jnp.float64):
  f = lambda a: jaxup.conv(a, jnp.ones((2, 2, 1, 1), dt), stride=2, padding=1).sum()
  g = jax.grad(f)(jnp.ones((1, 1, 4, 1), dt))
  assert g.dtype == dt
  np.testing.assert_array_equal(g, np.ones((1, 1, 4, 1)))
print("ok")
"""
  proc = _in_child(code)
  assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-4000:]


# ----------------------------------------------------------------------------------------------
# No input-dilated convolution in any derivative.

_LHS_DILATE = re.compile(r"lhs_dilate = \[([0-9, ]+)\]")


def _input_dilated(fn, *args) -> bool:
  text = jax.jit(fn).lower(*args).as_text()
  return any(set(m.replace(" ", "").split(",")) != {"1"} for m in _LHS_DILATE.findall(text))


def test_the_input_dilation_detector_sees_jax_own_conv_gradient():
  x, w = jnp.ones((1, 8, 8, 2)), jnp.ones((3, 3, 2, 2))
  f = lambda x: lax.conv_general_dilated(x, w, (2, 2), [(1, 1)] * 2,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC")).sum()
  assert _input_dilated(jax.grad(f), x)
  assert not _input_dilated(f, x)


@pytest.mark.parametrize("fn_name", ["conv", "conv_transpose"])
def test_no_derivative_emits_an_input_dilated_convolution(fn_name):
  fn = getattr(jaxup, fn_name)
  kw = dict(stride=(2, 3), padding=((1, 0), 2), dilation=(1, 2), groups=2)
  x = random((2, 7, 9, 4), np.float32)
  kernel = random((3, 2, 2, 4), np.float32, seed=1)
  for low in ("auto",) + FORCED:
    f = lambda x, k: fn(x, k, lowering=low, **kw)
    y = jax.eval_shape(f, x, kernel)
    ct = random(y.shape, np.float32, seed=2)
    loss = lambda x, k: jnp.vdot(f(x, k), ct)
    programs = {
        "grad": (jax.grad(loss, argnums=(0, 1)), x, kernel),
        "grad of grad": (jax.grad(lambda x, k: jnp.sum(jax.grad(loss)(x, k) ** 2), argnums=1),
                         x, kernel),
        "jvp": (lambda x, k: jax.jvp(f, (x, k), (x, k)), x, kernel),
        "vmap": (jax.vmap(f), jnp.stack([x, x]), jnp.stack([kernel, kernel])),
        "vmap of grad": (jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(0, None)),
                         jnp.stack([x, x]), kernel),
        "linear_transpose": (lambda x, k: jax.linear_transpose(lambda z: f(z, k), x)(ct), x,
                             kernel),
        "linear_transpose in the kernel": (
            lambda x, k: jax.linear_transpose(lambda v: f(x, v), k)(ct), x, kernel),
    }
    for name, (program, *args) in programs.items():
      assert not _input_dilated(program, *args), f"{fn_name} {low} {name}"


# ----------------------------------------------------------------------------------------------
# Derivatives and batching of every formulation.


@pytest.mark.parametrize("low", FORCED)
def test_check_grads_second_order_per_lowering(low):
  kw = dict(stride=2, padding=(1, 0), dilation=(1, 2), groups=2, lowering=low)
  x = random((1, 5, 6, 2))
  kernel = random((3, 2, 1, 4), seed=1)
  check_grads(lambda x, k: jaxup.conv(x, k, **kw), (x, kernel), order=2, modes=("fwd", "rev"))
  y = random((1, 3, 2, 4), seed=2)
  check_grads(lambda y, k: jaxup.conv_transpose(y, k, **kw), (y, kernel), order=2,
              modes=("fwd", "rev"))


@pytest.mark.parametrize("low", FORCED)
def test_vmap_over_inputs_kernels_or_both_equals_a_loop(low):
  kw = dict(stride=2, padding=1, groups=2, lowering=low)
  xs = random((3, 2, 5, 4), seed=0)  # 3 batches of NWC
  ks = random((3, 3, 2, 6), seed=1)
  ys = random((3, 2, 3, 6), seed=2)
  conv = lambda x, k: jaxup.conv(x, k, **kw)
  up = lambda y, k: jaxup.conv_transpose(y, k, output_size=5, **kw)
  kgrad = lambda x, y: jax.vjp(lambda k: conv(x, k), ks[0])[1](y)[0]
  for fn, a, b in ((conv, xs, ks), (up, ys, ks), (kgrad, xs, ys)):
    for axes in ((0, None), (None, 0), (0, 0)):
      pick = lambda v, ax, i: v[i] if ax == 0 else v[0]
      expected = jnp.stack([fn(pick(a, axes[0], i), pick(b, axes[1], i)) for i in range(3)])
      got = jax.vmap(fn, in_axes=(axes[0], axes[1]))(a if axes[0] == 0 else a[0],
                                                      b if axes[1] == 0 else b[0])
      np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# The dispatch rule and the keyword.


def test_each_rule_picks_matmul_only_for_small_spatial_extent_or_little_overlap_on_cpu():
  def geom(size, k=3, s=1, pad=None):
    # pad=None: padded by k - 1 in all (SAME-like); else by pad on each side.
    lo = (k - 1) // 2 if pad is None else pad
    total = k - 1 if pad is None else 2 * pad
    return lowering.Geometry(sizes=size, out_sizes=tuple((n + total - k) // s + 1 for n in size),
                             kernel_sizes=(k,) * len(size), strides=(s,) * len(size),
                             lows=(lo,) * len(size), dilations=(1,) * len(size), groups=1)
  conv, transpose, kgrad = lowering.conv_rule, lowering.transpose_rule, lowering.kernel_grad_rule
  assert geom((64, 64), k=4, s=2).highs() == (1, 1)  # the stride drops one row
  assert geom((32, 32), k=2, pad=1).out_sizes == (33, 33)
  # Padded beyond the kernel's span: the kernel gradient and the transpose take matrix
  # products, the convolution stays on XLA.
  assert kgrad(geom((32, 32), k=2, pad=1), "cpu") == "matmul"
  assert transpose(geom((32, 32), k=2, pad=1), "cpu") == "col2im"
  assert conv(geom((32, 32), k=2, pad=1), "cpu") == "xla"
  assert kgrad(geom((32, 32), k=3, pad=2), "cpu") == "matmul"
  assert kgrad(geom((32, 32), k=3, pad=1), "cpu") == "xla"
  assert kgrad(geom((32, 32), k=2, pad=1), "cuda") == "xla"
  assert conv(geom((2, 4)), "cpu") == "matmul"
  assert conv(geom((4, 4)), "cpu") == "matmul"
  assert conv(geom((8, 8)), "cpu") == "xla"
  assert conv(geom((64, 64)), "cpu") == "xla"
  assert conv(geom((64, 64), k=1), "cpu") == "matmul"  # one tap: a plain product
  assert conv(geom((64, 64), k=2, s=2), "cpu") == "matmul"  # disjoint windows: a relayout
  assert conv(geom((64, 64), k=3, s=2), "cpu") == "xla"
  assert transpose(geom((64, 64), k=3, s=2), "cpu") == "phases"  # 9 taps over 4 phases
  assert transpose(geom((64, 64), k=2, s=2), "cpu") == "col2im"  # disjoint windows
  assert transpose(geom((64, 64), k=4, s=2), "cpu") == "subpixel"
  dilated = geom((64, 64), k=4, s=2)._replace(dilations=(2, 1))
  assert transpose(dilated, "cpu") == "phases"
  # Dilated and strided: by phase, whose products are exactly the kept taps' (col2im multiplies
  # every tap with every output, padding included).
  assert transpose(geom((64, 64), k=3, s=2)._replace(dilations=(1, 2)), "cpu") == "phases"
  # Off the CPU: XLA's convolution and JAX's own transposes.
  for platform in ("cuda", "rocm", "tpu", None):
    assert conv(geom((2, 4)), platform) == "xla"
    assert transpose(geom((2, 4)), platform) == "lax"
    assert kgrad(geom((2, 4)), platform) == "xla"
  for rule, forms in ((conv, lowering.CONV_FORMS), (transpose, lowering.TRANSPOSE_FORMS),
                      (kgrad, lowering.KERNEL_GRAD_FORMS)):
    for g in (geom((2, 4)), geom((64, 64)), geom((64, 64), k=3, s=2), dilated):
      for platform in ("cpu", "cuda"):
        assert rule(g, platform) in forms


def test_lowering_keyword_is_validated_and_case_insensitive():
  x, kernel = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2))
  np.testing.assert_allclose(jaxup.conv(x, kernel, lowering="MatMul"),
                             jaxup.conv(x, kernel, lowering="xla"), rtol=1e-12)
  for fn in (jaxup.conv, jaxup.conv_transpose):
    with pytest.raises(ValueError, match=r"lowering must be one of 'auto', 'xla', 'matmul', "
                                         r"got 'fast'"):
      fn(x, kernel, lowering="fast")
    with pytest.raises(TypeError, match=r"lowering must be a string"):
      fn(x, kernel, lowering=None)


def test_subpixel_kernel_is_built_without_gathers():
  kw = dict(stride=2, padding=1)
  f = lambda y, k: jaxup.conv_transpose(y, k, lowering="xla", **kw)
  text = jax.jit(f).lower(jnp.ones((1, 4, 4, 3)), jnp.ones((4, 4, 2, 3))).as_text()
  assert "gather" not in text and "scatter" not in text


# ----------------------------------------------------------------------------------------------
# Empty operands.


def test_vmap_over_an_empty_batch_returns_an_empty_result():
  x, kernel = jnp.zeros((0, 4, 1)), jnp.ones((3, 1, 2))
  calls = {
      "conv": (lambda a: jaxup.conv(a, kernel, layout="WC"), x, (0, 2, 2)),
      "conv_transpose": (lambda a: jaxup.conv_transpose(a, kernel, stride=2, layout="WC"),
                         jnp.zeros((0, 4, 2)), (0, 9, 1)),
      "upsample_conv": (lambda a: jaxup.upsample_conv(a, kernel, 2, layout="WC"), x, (0, 6, 2)),
      "conv over kernels": (lambda k: jaxup.conv(jnp.ones((4, 1)), k, layout="WC"),
                            jnp.zeros((0, 3, 1, 2)), (0, 2, 2)),
  }
  for name, (fn, arg, shape) in calls.items():
    out = jax.vmap(fn)(arg)
    assert out.shape == shape, name
    grad = jax.vmap(jax.grad(lambda a: jnp.sum(fn(a))))(arg)
    assert grad.shape == arg.shape, name


@pytest.mark.parametrize("low", lowering.LOWERINGS)
def test_zero_channels_give_zeros_in_every_lowering(low):
  up = jaxup.conv_transpose(jnp.zeros((1, 8, 8, 0)), jnp.zeros((3, 3, 4, 0)), padding=1,
                            lowering=low)
  np.testing.assert_array_equal(up, np.zeros((1, 8, 8, 4)))
  y = jaxup.conv(jnp.zeros((1, 8, 8, 0)), jnp.zeros((3, 3, 0, 4)), padding=1, lowering=low)
  np.testing.assert_array_equal(y, np.zeros((1, 8, 8, 4)))
  gw = jax.grad(lambda k: jnp.sum(jaxup.conv(jnp.ones((1, 8, 8, 3)), k, stride=2,
                                             lowering=low)))(jnp.zeros((3, 3, 3, 0)))
  assert gw.shape == (3, 3, 3, 0)


# ----------------------------------------------------------------------------------------------
# Per platform: JAX's own transposes off the CPU, never an input dilation on it.


def _exported(fn, platform, *args):
  avals = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args]
  return jax.export.export(jax.jit(fn), platforms=[platform])(*avals).mlir_module()


@pytest.mark.parametrize("fn_name", ["conv", "conv_transpose"])
def test_off_the_cpu_the_transposes_are_jax_own(fn_name):
  # Exported, not run: the text of the program XLA would get on each platform.
  fn = getattr(jaxup, fn_name)
  x, kernel = random((2, 8, 8, 4), np.float32), random((3, 3, 4, 4), np.float32, seed=1)
  loss = lambda x, k: jnp.sum(fn(x, k, stride=2, padding=1) ** 2)
  grad = jax.grad(loss, argnums=(0, 1))
  for platform in ("cuda", "tpu"):
    text = _exported(grad, platform, x, kernel)
    assert "lhs_dilate = [2, 2]" in text, platform  # the input-dilated transpose
    assert "dot_general" not in text and "gather" not in text, platform
  cpu = _exported(grad, "cpu", x, kernel)
  assert "lhs_dilate" not in cpu or not re.search(r"lhs_dilate = \[(?!1, 1\])", cpu)
  # The forward pass itself is the same convolution everywhere off the CPU.
  assert "stablehlo.convolution" in _exported(lambda x, k: fn(x, k, stride=2), "cuda", x, kernel)


def test_the_own_transpose_equals_the_definition():
  # JAX's own transpose, lowered for the CPU here in a child process (an input-dilated
  # convolution may abort XLA:CPU), against the sub-pixel and col2im forms.
  code = """
import jax, jax.numpy as jnp, numpy as np
from jaxup._src import lowering
rng = np.random.default_rng(0)
for k, s, d, lo in ((3, 2, 1, 1), (4, 2, 1, 1), (3, 3, 2, 2), (2, 1, 3, 3)):
  geom = lowering.Geometry((9, 7), ((9 + 2 * lo - d * (k - 1) - 1) // s + 1,
                           (7 + 2 * lo - d * (k - 1) - 1) // s + 1), (k, k), (s, s), (lo, lo),
                           (d, d), 1)
  y = jnp.asarray(rng.standard_normal((2, *geom.out_sizes, 3)))
  w = jnp.asarray(rng.standard_normal((k, k, 2, 3)))
  own = jax.jit(lambda y, w: lowering.transpose_by("lax", y, w, geom))(y, w)
  ref = jax.jit(lambda y, w: lowering.transpose_by("col2im", y, w, geom))(y, w)
  np.testing.assert_allclose(own, ref, rtol=1e-10, atol=1e-10)
print("ok")
"""
  proc = _in_child(code)
  assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-4000:]
