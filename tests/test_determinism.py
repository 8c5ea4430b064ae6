"""Determinism: the same inputs give bit-identical outputs from call to call and from process
to process, under jit, and for max_unpool with repeated indices."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digests() -> dict[str, str]:
  """sha256 of the bytes of every public function's jitted output (float32 and float64) and
  of its jitted gradient (float32), for fixed inputs; raises if two calls differ.

  A program that lowers to an input-dilated convolution is left out: XLA:CPU may abort the
  process compiling it (tests/test_no_input_dilation.py fails for it instead)."""
  from tests.test_no_input_dilation import CASES, dilated

  out = {}
  for case in CASES:
    for dtype in (jnp.float32, jnp.float64):
      args = case.args(dtype)
      programs = {"jit": jax.jit(case.fn)}
      if case.floats and dtype == jnp.float32:
        programs["grad"] = jax.jit(jax.grad(lambda *a, f=case.fn: jnp.sum(f(*a) ** 2),
                                            argnums=case.floats))
      for name, program in programs.items():
        if dilated(program.lower(*args).as_text()):
          continue
        data = [b"".join(np.asarray(leaf).tobytes() for leaf in jax.tree.leaves(program(*args)))
                for _ in range(2)]
        if data[0] != data[1]:
          raise AssertionError(f"{case.name} {np.dtype(dtype).name} {name}: calls differ")
        data = data[0]
        out[f"{case.name} {np.dtype(dtype).name} {name}"] = hashlib.sha256(data).hexdigest()
  return out


def _digests_in_subprocesses(count: int) -> list[dict[str, str]]:
  """``digests()`` from ``count`` fresh processes, run side by side."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  code = ("import jax; jax.config.update('jax_enable_x64', True); "
          "from tests.test_determinism import digests; "
          "print('\\n'.join(f'{k}\\t{v}' for k, v in digests().items()))")
  processes = [subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(count)]
  results = []
  for p in processes:
    stdout, stderr = p.communicate(timeout=600)
    assert p.returncode == 0, stderr
    results.append(dict(line.split("\t") for line in stdout.strip().splitlines()))
  return results


def test_bit_identical_across_processes_and_calls():
  # Each process also calls every program twice and compares the bytes.
  first, second = _digests_in_subprocesses(2)
  assert len(first) > 40 and first == second


def _last_wins_reference(values, indices, out_size):
  """NumPy: for each plane, the values in row-major order, each overwriting its target."""
  out = np.zeros(values.shape[:-2] + (out_size,) + values.shape[-1:], values.dtype)
  for b in range(values.shape[0]):
    for c in range(values.shape[-1]):
      for v, i in zip(values[b, :, c], indices[b, :, c]):
        if 0 <= i < out_size:
          out[b, i, c] = v
  return out


def test_max_unpool_with_repeated_indices_is_deterministic():
  import jaxup

  rng = np.random.default_rng(0)
  # Overlapping windows (window 5, stride 1, output 100): 96 values aimed at 8 positions
  # per plane, about 10 at each.
  values = rng.standard_normal((3, 96, 4)).astype(np.float32)
  indices = rng.integers(-2, 10, values.shape).astype(np.int32)  # some negative: dropped
  unpool = jax.jit(lambda v, i: jaxup.max_unpool(v, i, 5, stride=1, layout="NWC"))
  results = [np.asarray(unpool(values, indices)) for _ in range(5)]
  results.append(np.asarray(jaxup.max_unpool(values, indices, 5, stride=1, layout="NWC")))
  results.append(np.asarray(jax.vmap(lambda v, i: jaxup.max_unpool(
      v, i, 5, stride=1, layout="WC"))(values, indices)))
  for r in results[1:]:
    assert r.tobytes() == results[0].tobytes()
  np.testing.assert_array_equal(results[0], _last_wins_reference(values, indices, 100))
  assert np.count_nonzero(results[0][:, :8]) == 3 * 8 * 4  # every target was hit
