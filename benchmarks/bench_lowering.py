"""Convolution lowering: jaxup.conv / conv_transpose against lax and PyTorch (channels-last).

The shapes where XLA:CPU's convolution is slow (small spatial extent, many channels), the U-Net
and DCGAN transposed convolutions, and the input gradient of a strided convolution, forward and
training step (forward + gradients of input and kernel). Every candidate of a case computes the
same numbers (checked before timing in ``main``).

  python benchmarks/bench_lowering.py [--quick]
  python benchmarks/bench_lowering.py --formulations   # the measurements behind "auto"
  python benchmarks/bench_lowering.py --costs          # XLA temp memory and FLOPs, no timing
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jaxup  # noqa: E402
from _timing import (Candidate, Case, channels_last_view, compare, format_row,  # noqa: E402
                     kernel_view)

try:
  import torch
except ImportError:  # the torch candidates are left out
  torch = None
if jax.default_backend() != "cpu":  # PyTorch runs on CPU here: no comparison on an accelerator
  torch = None

_DN = ("NHWC", "HWIO", "NHWC")


def _arrays(x_shape, k_shape, seed=0):
  rng = np.random.default_rng(seed)
  fan_in = int(np.prod(k_shape[:-1]))
  x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
  w = jnp.asarray(rng.standard_normal(k_shape) / np.sqrt(fan_in), jnp.float32)
  return x, w


def _torch_nchw(a, channels_last=True):
  t = torch.from_numpy(np.array(a)).permute(0, 3, 1, 2)
  return t.contiguous(memory_format=torch.channels_last if channels_last else
                      torch.contiguous_format)


def _train(fn):
  """The training step of ``fn(x, w)``: gradients of ``sum(fn(x, w) * ct)`` in x and w."""
  return lambda x, w, ct: jax.grad(lambda x, w: jnp.vdot(fn(x, w), ct), argnums=(0, 1))(x, w)


def _torch_train(op, xt, wt, ct):
  xt = xt.detach().clone().requires_grad_(True)
  wt = wt.detach().clone().requires_grad_(True)

  def step():
    xt.grad = None
    wt.grad = None
    op(xt, wt).backward(ct)
    return channels_last_view(xt.grad), kernel_view(wt.grad)  # NHWC and the jaxup kernel
  return step


def _conv_case(name, x_shape, k, c_out, *, stride=1, padding="SAME", modes=("forward", "train")):
  c_in = x_shape[-1]
  x, w = _arrays(x_shape, (k, k, c_in, c_out))
  pads = padding if isinstance(padding, str) else [(padding, padding)] * 2

  def ours(x, w):
    return jaxup.conv(x, w, stride=stride, padding=padding)

  def ref(x, w):
    return lax.conv_general_dilated(x, w, (stride, stride), pads, dimension_numbers=_DN)

  y = jax.eval_shape(ours, x, w)
  ct = jnp.asarray(np.random.default_rng(1).standard_normal(y.shape), jnp.float32)
  cases = []
  for mode in modes:
    if mode == "forward":
      cands = [Candidate("jaxup", ours, (x, w)), Candidate("lax", ref, (x, w))]
    else:
      cands = [Candidate("jaxup", _train(ours), (x, w, ct)),
               Candidate("lax", _train(ref), (x, w, ct))]
    if torch is not None:
      xt, wt = _torch_nchw(x), torch.from_numpy(np.array(w)).permute(3, 2, 0, 1).contiguous()
      tpad = padding if isinstance(padding, int) else "same"
      op = lambda a, b: torch.nn.functional.conv2d(a, b, stride=stride, padding=tpad)
      if mode == "forward":
        cands.append(Candidate("torch", lambda: _no_grad(op, xt, wt), framework="torch"))
      else:
        cands.append(Candidate("torch", _torch_train(op, xt, wt, _torch_nchw(ct)),
                               framework="torch"))
    cases.append(Case(f"{name} {tuple(x_shape)}", "operators", mode, cands, "lax"))
  return cases


def _no_grad(op, *args):
  with torch.no_grad():
    return channels_last_view(op(*args))


def _conv_transpose_case(name, x_shape, k, c_out, *, stride, padding, modes=("forward", "train")):
  c_in = x_shape[-1]
  x, w = _arrays(x_shape, (k, k, c_out, c_in))  # the forward convolution's kernel

  def ours(x, w):
    return jaxup.conv_transpose(x, w, stride=stride, padding=padding)

  def ref(x, w):
    pads = [(k - 1 - padding, k - 1 - padding)] * 2
    return lax.conv_transpose(x, w, (stride, stride), pads, dimension_numbers=_DN,
                              transpose_kernel=True)

  y = jax.eval_shape(ours, x, w)
  ct = jnp.asarray(np.random.default_rng(1).standard_normal(y.shape), jnp.float32)
  cases = []
  for mode in modes:
    if mode == "forward":
      cands = [Candidate("jaxup", ours, (x, w)), Candidate("lax", ref, (x, w))]
    else:
      cands = [Candidate("jaxup", _train(ours), (x, w, ct)),
               Candidate("lax", _train(ref), (x, w, ct))]
    if torch is not None:
      xt = _torch_nchw(x)
      wt = torch.from_numpy(np.array(w)).permute(3, 2, 0, 1).contiguous()  # [C_in, C_out, k, k]
      op = lambda a, b: torch.nn.functional.conv_transpose2d(a, b, stride=stride,
                                                             padding=padding)
      if mode == "forward":
        cands.append(Candidate("torch", lambda: _no_grad(op, xt, wt), framework="torch"))
      else:
        cands.append(Candidate("torch", _torch_train(op, xt, wt, _torch_nchw(ct)),
                               framework="torch"))
    cases.append(Case(f"{name} {tuple(x_shape)}", "operators", mode, cands, "lax"))
  return cases


def _input_grad_case(x_shape, k, c_out, stride, padding):
  """The input gradient alone, against jax.grad of lax.conv_general_dilated (input-dilated)."""
  x, w = _arrays(x_shape, (k, k, x_shape[-1], c_out))

  def ours(x, w, ct):
    return jax.vjp(lambda z: jaxup.conv(z, w, stride=stride, padding=padding), x)[1](ct)[0]

  def ref(x, w, ct):
    pads = [(padding, padding)] * 2
    return jax.vjp(lambda z: lax.conv_general_dilated(z, w, (stride, stride), pads,
                                                      dimension_numbers=_DN), x)[1](ct)[0]

  y = jax.eval_shape(lambda x, w: jaxup.conv(x, w, stride=stride, padding=padding), x, w)
  ct = jnp.asarray(np.random.default_rng(1).standard_normal(y.shape), jnp.float32)
  cands = [Candidate("jaxup", ours, (x, w, ct)), Candidate("lax", ref, (x, w, ct))]
  if torch is not None:
    wt = torch.from_numpy(np.array(w)).permute(3, 2, 0, 1).contiguous()
    ctt = _torch_nchw(ct)
    size = (x_shape[0], x_shape[-1], *x_shape[1:3])
    cands.append(Candidate("torch", lambda: channels_last_view(torch.nn.grad.conv2d_input(
        size, wt, ctt, stride=stride, padding=padding)), framework="torch"))
  return [Case(f"input gradient of conv k{k} s{stride} p{padding} {tuple(x_shape)}->{c_out}",
               "operators", "backward", cands, "lax")]


def cases(quick: bool = False) -> list:
  """The lowering cases; ``quick`` keeps the cheap ones (small spatial, forward only)."""
  out = []
  out += _conv_case("conv 3x3 SAME 512->512", (1, 2, 4, 512), 3, 512,
                    modes=("forward",) if quick else ("forward", "train"))
  out += _conv_case("conv 3x3 SAME 1024->1024", (1, 2, 2, 1024), 3, 1024,
                    modes=("forward",) if quick else ("forward", "train"))
  out += _conv_transpose_case("conv_transpose k2 s2 1024->512 (U-Net)", (1, 2, 2, 1024), 2, 512,
                              stride=2, padding=0,
                              modes=("forward",) if quick else ("forward", "train"))
  if not quick:
    out += _conv_transpose_case("conv_transpose k4 s2 p1 128->64 (DCGAN)", (8, 32, 32, 128), 4,
                                64, stride=2, padding=1)
    out += _input_grad_case((8, 64, 64, 64), 3, 64, stride=2, padding=1)
  else:
    out += _input_grad_case((2, 32, 32, 32), 3, 32, stride=2, padding=1)
  return out


def run_case(case: Case, repeats: int = 15) -> dict:
  """Checks that the candidates agree, then times them alternately; returns the medians."""
  calls, results = {}, {}
  for cand in case.candidates:
    if cand.framework == "jax":
      fn = jax.jit(cand.fn)
      calls[cand.label] = (lambda fn=fn, args=cand.args: fn(*args))
    else:
      calls[cand.label] = cand.fn
    out = calls[cand.label]()
    out = out if isinstance(out, tuple) else (out,)
    results[cand.label] = [np.asarray(o.detach().numpy() if hasattr(o, "detach") else o)
                           for o in out]
  ref = results[case.baseline]
  for label, got in results.items():
    for i, (g, r) in enumerate(zip(got, ref)):  # torch returns channels-last views
      np.testing.assert_allclose(g, r, rtol=2e-3, atol=2e-3, err_msg=f"{case.name} {label}")
  return compare(calls, repeats=repeats)


# The shapes behind the "auto" rule: (N, H, W, C_in, C_out, kernel, stride, padding).
RULE_SHAPES = [
    (1, 2, 4, 512, 512, 3, 1, 1), (8, 2, 4, 512, 512, 3, 1, 1), (1, 2, 2, 1024, 1024, 3, 1, 1),
    (1, 4, 4, 512, 512, 3, 1, 1), (16, 4, 4, 512, 256, 3, 1, 1), (1, 8, 8, 256, 256, 3, 1, 1),
    (8, 16, 16, 128, 128, 3, 1, 1), (8, 32, 32, 64, 64, 3, 1, 1), (8, 64, 64, 64, 64, 3, 1, 1),
    (8, 32, 32, 64, 64, 1, 1, 0), (8, 64, 64, 64, 64, 3, 2, 1), (8, 64, 64, 64, 128, 2, 2, 0),
    # Padded beyond the kernel's span (upsample_conv's polyphase kernel is the first).
    (8, 32, 32, 64, 256, 2, 1, 1), (8, 32, 32, 64, 64, 3, 1, 2),
]
TRANSPOSE_RULE_SHAPES = [  # (N, H, W, C_in, C_out, kernel, stride, padding) of conv_transpose
    (1, 2, 2, 1024, 512, 2, 2, 0), (8, 32, 32, 64, 64, 3, 2, 1), (16, 4, 4, 512, 256, 4, 2, 1),
    (8, 32, 32, 128, 64, 2, 2, 0), (8, 32, 32, 128, 64, 4, 2, 1), (1, 16, 16, 256, 128, 4, 2, 1),
]


def formulations(repeats: int = 7):
  """Times every forced lowering of conv, conv_transpose and the kernel gradient."""
  for transpose, shapes in ((False, RULE_SHAPES), (True, TRANSPOSE_RULE_SHAPES)):
    for n, h, w_, c_in, c_out, k, s, p in shapes:
      k_shape = (k, k, c_out, c_in) if transpose else (k, k, c_in, c_out)
      x, w = _arrays((n, h, w_, c_in), k_shape)
      op = jaxup.conv_transpose if transpose else jaxup.conv
      calls = {}
      for low in ("xla", "matmul"):
        f = jax.jit(lambda x, w, low=low: op(x, w, stride=s, padding=p, lowering=low))
        y = f(x, w)
        g = jax.jit(lambda x, w, y=y, low=low: jax.vjp(
            lambda v: op(x, v, stride=s, padding=p, lowering=low), w)[1](y)[0])
        g(x, w)
        calls[low] = lambda f=f: f(x, w)
        calls["kgrad-" + low] = lambda g=g: g(x, w)
      med = compare(calls, repeats=repeats)
      name = "conv_transpose" if transpose else "conv"
      print(f"{name} k{k} s{s} p{p} {(n, h, w_, c_in)}->{c_out}: "
            + ", ".join(f"{a}={t * 1e3:.2f}ms" for a, t in med.items())
            + f"  xla/matmul={med['xla'] / med['matmul']:.2f}"
            + f"  kgrad xla/matmul={med['kgrad-xla'] / med['kgrad-matmul']:.2f}", flush=True)


def _compiled_cost(fn, *args):
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled.memory_analysis().temp_size_in_bytes, compiled.cost_analysis()["flops"]


def costs(channels=(2048, 256), rates=(1, 2, 6, 12, 18, 24, 36), strides=(1, 2)):
  """XLA temp memory and FLOPs of the gradient (input and kernel) of DeepLab's ASPP branch, a
  3x3 convolution at each rate with padding the rate on an (2, 8, 12) map, against lax's.

  Compiled, never run: the figures do not depend on the machine's load.
  """
  c_in, c_out = channels
  x, w = _arrays((2, 8, 12, c_in), (3, 3, c_in, c_out))
  for s in strides:
    for d in rates:
      ours = jax.grad(lambda a, v: jnp.sum(jaxup.conv(a, v, stride=s, padding=d,
                                                      dilation=d) ** 2), argnums=(0, 1))
      ref = jax.grad(lambda a, v: jnp.sum(lax.conv_general_dilated(
          a, v, (s, s), [(d, d)] * 2, rhs_dilation=(d, d), dimension_numbers=_DN) ** 2),
                     argnums=(0, 1))
      (mj, fj), (ml, fl) = _compiled_cost(ours, x, w), _compiled_cost(ref, x, w)
      print(f"ASPP {c_in}->{c_out} rate {d} stride {s}: temp {mj / 1e6:.2f} MB / lax "
            f"{ml / 1e6:.2f} MB ({mj / max(ml, 1):.2f}x), {fj / 1e9:.3f} / {fl / 1e9:.3f} GFLOP "
            f"({fj / fl:.2f}x)", flush=True)


def main():
  if "--formulations" in sys.argv:
    formulations()
    return
  if "--costs" in sys.argv:
    costs()
    return
  quick = "--quick" in sys.argv
  cores = len(os.sched_getaffinity(0))
  if torch is not None:
    torch.set_num_threads(cores)
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {cores} cores, "
        f"float32, torch threads={torch.get_num_threads() if torch else 'n/a'}")
  for case in cases(quick):
    medians = run_case(case, repeats=7 if quick else 15)
    print(format_row(f"[{case.mode}] {case.name}", medians, case.baseline), flush=True)


if __name__ == "__main__":
  main()
