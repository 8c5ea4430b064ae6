"""Benchmark of resize's lanczos and area methods and of scale_and_translate against jax.image
(and PyTorch's area), CPU, float32, channels-last.

``cases(quick, smoke)`` returns the cases as data (benchmarks/_timing.py ``Case`` and
``Candidate``) for ``benchmarks/run.py``; ``python benchmarks/bench_resize_methods.py [--quick]``
runs them alone through the same runner and prints the table.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import Candidate, Case  # noqa: E402

import jaxup  # noqa: E402


def _image(shape, method, antialias):
  return lambda v: jax.image.resize(v, shape, method, antialias=antialias)


def _train(fn):
  """Forward and backward: value and gradient of ``<fn(v), g>`` for a given cotangent ``g``."""
  return jax.value_and_grad(lambda v, g: jnp.vdot(fn(v), g))


def cases(quick: bool = False, smoke: bool = False) -> list:
  """The benchmark cases of the resize methods (small shapes when ``quick``, tiny for
  ``smoke``)."""
  n, s, c = (1, 8, 2) if smoke else (2, 48, 8) if quick else (8, 128, 32)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((n, s, s, c), dtype=np.float32))
  big = jnp.asarray(rng.standard_normal((n, 3 * s, 3 * s, c), dtype=np.float32))
  result = []
  for method, source, out, antialias, label in (
      ("lanczos3", x, 2 * s, False, "2x up"),
      ("lanczos5", x, 2 * s, False, "2x up"),
      ("lanczos3", big, s, True, "1/3 down, antialiased"),
      ("lanczos5", big, s, True, "1/3 down, antialiased"),
  ):
    shape = (n, out, out, c)
    ours = (lambda m, o, a: lambda v: jaxup.resize(v, o, method=m, antialias=a))(
        method, out, antialias)
    theirs = _image(shape, method, antialias)
    result.append(Case(f"resize {method} {label} {tuple(source.shape)}", "operators",
                       "forward", [Candidate("jaxup", ours, (source,)),
                                   Candidate("jax.image", theirs, (source,))], "jax.image"))
  down = (5 * s) // 2
  wide = jnp.asarray(rng.standard_normal((n, down, down, c), dtype=np.float32))
  result.append(Case(
      f"resize area-overlap 1/2.5 down {tuple(wide.shape)}", "operators", "forward",
      [Candidate("jaxup", lambda v: jaxup.resize(v, s, method="area-overlap"), (wide,)),
       Candidate("jax.image", _image((n, s, s, c), "area", True), (wide,))], "jax.image"))
  ours = lambda v: jaxup.resize(v, 2 * s, method="lanczos3")
  g = jnp.asarray(rng.standard_normal((n, 2 * s, 2 * s, c), dtype=np.float32))
  result.append(Case(
      f"resize lanczos3 2x up {tuple(x.shape)}", "operators", "train",
      [Candidate("jaxup", _train(ours), (x, g)),
       Candidate("jax.image", _train(_image((n, 2 * s, 2 * s, c), "lanczos3", False)),
                 (x, g))], "jax.image"))
  # A shift that puts no output exactly on the input edge (a float32 tie for jax.image).
  scale, shift = (1.7, 0.6), (2.3, -1.1)
  out = (int(1.7 * s), int(0.6 * s))
  result.append(Case(
      f"scale_and_translate lanczos3 {tuple(x.shape)} -> {out}", "operators", "forward",
      [Candidate("jaxup", lambda v: jaxup.scale_and_translate(
          v, out, scale=scale, translation=shift, method="lanczos3"), (x,)),
       Candidate("jax.image", lambda v: jax.image.scale_and_translate(
           v, (n,) + out + (c,), (1, 2), jnp.array(scale, jnp.float32),
           jnp.array(shift, jnp.float32), "lanczos3"), (x,))], "jax.image"))
  try:
    import torch
    import torch.nn.functional as F
  except ImportError:
    return result
  torch.set_num_threads(os.cpu_count())
  xt = torch.from_numpy(np.array(big)).permute(0, 3, 1, 2).contiguous(
      memory_format=torch.channels_last)
  result.append(Case(
      f"resize area (PyTorch's) 1/3 down {tuple(big.shape)}", "operators", "forward",
      [Candidate("jaxup", lambda v: jaxup.resize(v, s, method="area"), (big,)),
       Candidate("torch", lambda: F.interpolate(xt, size=(s, s), mode="area").permute(
           0, 2, 3, 1), framework="torch")], "torch"))
  return result


if __name__ == "__main__":
  import run
  sys.exit(run.main(sys.argv[1:], modules=[sys.modules[__name__]]))
