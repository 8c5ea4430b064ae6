"""Transposed convolution: jaxup.conv_transpose against lax.conv_transpose and PyTorch.

Same process, alternating candidates, medians over repeated calls, compile excluded. Every
candidate computes the same PyTorch-convention transposed convolution (checked before timing).

  python benchmarks/bench_conv.py
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
from _timing import compare, compile_stats, format_row  # noqa: E402

CASES = [
    # (name, input shape NHWC, kernel size, stride, padding, output_padding)
    ("2x upsample k4 s2 p1 (DCGAN)", (8, 64, 64, 64), 4, 2, 1, 0),
    ("2x upsample k3 s2 p1 op1", (8, 64, 64, 64), 3, 2, 1, 1),
    ("2x upsample k2 s2 (U-Net)", (8, 64, 64, 64), 2, 2, 0, 0),
    ("stride 1 k3 p1", (8, 64, 64, 64), 3, 1, 1, 0),
]


def lax_reference(x, kernel, stride, padding, output_padding):
  """The same transposed convolution through lax.conv_transpose (transpose_kernel=True)."""
  k = kernel.shape[0]
  pads = [(k - 1 - padding, k - 1 - padding + output_padding)] * 2
  return lax.conv_transpose(x, kernel, (stride, stride), pads,
                            dimension_numbers=("NHWC", "HWIO", "NHWC"), transpose_kernel=True)


def main():
  try:
    import torch
  except ImportError:
    torch = None
  threads = os.cpu_count()
  if torch is not None:
    torch.set_num_threads(threads)
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, float32, "
        f"torch threads={threads if torch else 'n/a'}")
  rng = np.random.default_rng(0)
  for name, shape, k, s, p, op in CASES:
    c = shape[-1]
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((k, k, c // 2, c)) / (k * k * c), jnp.float32)
    ours = jax.jit(lambda x, w: jaxup.conv_transpose(x, w, stride=s, padding=p,
                                                     output_padding=op))
    ref = jax.jit(lambda x, w: lax_reference(x, w, s, p, op))
    np.testing.assert_allclose(ours(x, kernel), ref(x, kernel), rtol=1e-4, atol=1e-4)
    candidates = {"jaxup": lambda: ours(x, kernel), "lax.conv_transpose": lambda: ref(x, kernel)}
    if torch is not None:
      xt = torch.from_numpy(np.asarray(x)).permute(0, 3, 1, 2).contiguous(
          memory_format=torch.channels_last)
      wt = torch.from_numpy(np.asarray(kernel)).permute(3, 2, 0, 1).contiguous()
      expected = torch.nn.functional.conv_transpose2d(xt, wt, stride=s, padding=p,
                                                      output_padding=op)
      np.testing.assert_allclose(ours(x, kernel), expected.permute(0, 2, 3, 1).numpy(),
                                 rtol=1e-4, atol=1e-4)

      def torch_call():
        with torch.no_grad():
          return torch.nn.functional.conv_transpose2d(xt, wt, stride=s, padding=p,
                                                      output_padding=op)
      candidates["torch"] = torch_call
    medians = compare(candidates, repeats=15)
    print(format_row(f"{name} {shape}", medians, "lax.conv_transpose"))
    for label, fn in (("jaxup", lambda x, w: jaxup.conv_transpose(
        x, w, stride=s, padding=p, output_padding=op)),
                      ("lax.conv_transpose", lambda x, w: lax_reference(x, w, s, p, op))):
      st = compile_stats(fn, x, kernel)
      print(f"    {label}: compile {st['compile_s']:.2f}s, temp {st['temp_bytes']} B, "
            f"output {st['output_bytes']} B")


if __name__ == "__main__":
  main()
