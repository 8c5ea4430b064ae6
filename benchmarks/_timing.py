"""Timing and memory helpers shared by the benchmark scripts.

Each benchmark compares candidates on the same inputs in the same process: compile first
(timed separately), then time the candidates in turn and report medians, so that drift of the
machine hits every candidate alike. Results are blocked on before the clock stops.

Two methods (``run.py --timing``):

* ``block`` (:func:`compare_blocks`, the default): each candidate runs hot, in blocks. A block
  is a pause of ``idle`` seconds, one untimed call, then ``calls`` calls back to back, timed
  together; the blocks alternate between candidates and each candidate's time is the median of
  its blocks' time per call. PyTorch's OpenMP threads run about 2x slower on the first call
  after idling and keep spinning for about 20 ms after each call, slowing whatever runs next:
  timing single calls in alternation charges both effects to whichever candidate they land on.
* ``alternate`` (:func:`compare`): one call of each candidate in turn, the median of the calls.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Callable, Mapping

import jax


# Where PyTorch candidates put their tensors: "cpu" (the default), or "cuda" to compare with a
# GPU run of jax (``run.py --torch-device cuda``).
TORCH_DEVICE = "cpu"


def _block(x):
  """Waits for ``x``: jax arrays are blocked on, and the GPU synchronised for CUDA tensors."""
  def wait(a):
    if hasattr(a, "block_until_ready"):
      return a.block_until_ready()
    if getattr(a, "is_cuda", False):
      import torch
      torch.cuda.synchronize()
    return a
  return jax.tree_util.tree_map(wait, x)


def compile_stats(fn: Callable, *args) -> dict:
  """Compile time (s) and XLA memory_analysis (bytes) of ``jax.jit(fn)`` on ``args``."""
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  seconds = time.perf_counter() - start
  stats = {"compile_s": seconds, "temp_bytes": None, "output_bytes": None}
  mem = compiled.memory_analysis()
  if mem is not None:
    stats["temp_bytes"] = int(mem.temp_size_in_bytes)
    stats["output_bytes"] = int(mem.output_size_in_bytes)
  return stats


def compare(candidates: Mapping[str, Callable[[], object]], *, repeats: int = 30,
            warmup: int = 2) -> dict[str, float]:
  """Median seconds per call of each zero-argument callable, alternating between them.

  The callables must already be compiled (call them once before, or rely on ``warmup``).
  Each round starts with the next candidate in turn: a call pays part of its predecessor's
  cleanup (freeing a large output, say), so a fixed order would favour some positions.
  """
  for fn in candidates.values():
    for _ in range(warmup):
      _block(fn())
  names = list(candidates)
  times = {name: [] for name in names}
  for round_ in range(repeats):
    shift = round_ % len(names)
    for name in names[shift:] + names[:shift]:
      start = time.perf_counter()
      _block(candidates[name]())
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(ts) for name, ts in times.items()}


def calls_for(seconds: float, target: float, most: int, least: int = 2) -> int:
  """How many back-to-back calls fill a block of about ``target`` seconds, for a call that took
  ``seconds``: between ``least`` and ``most``."""
  if seconds <= 0:
    return most
  return max(least, min(most, int(round(target / seconds))))


def compare_blocks(candidates: Mapping[str, Callable[[], object]], *, blocks: int = 7,
                   calls: Mapping[str, int] | int = 5, idle: float = 0.1) -> dict[str, float]:
  """Median seconds per call of each zero-argument callable, timed hot in alternated blocks.

  Each block of a candidate: ``time.sleep(idle)``, one untimed call, then ``calls`` calls back
  to back, every result blocked on, timed as one span; its time per call is the span over
  ``calls``. Blocks go round the candidates, the first candidate of each round rotating, and
  each candidate's result is the median over its ``blocks`` blocks.

  Args:
    candidates: ``{label: callable}``, already compiled.
    blocks: blocks per candidate.
    calls: timed calls per block, one number or one per label.
    idle: seconds of sleep before each block (lets the previous candidate's threads settle).
  """
  names = list(candidates)
  per_block = {name: [] for name in names}
  for round_ in range(blocks):
    shift = round_ % len(names)
    for name in names[shift:] + names[:shift]:
      fn = candidates[name]
      n = calls if isinstance(calls, int) else calls[name]
      if idle > 0:
        time.sleep(idle)
      _block(fn())
      start = time.perf_counter()
      for _ in range(n):
        _block(fn())
      per_block[name].append((time.perf_counter() - start) / n)
  return {name: statistics.median(ts) for name, ts in per_block.items()}


def dot_peak(n: int, *, blocks: int = 5, calls: int = 3, idle: float = 0.1) -> dict:
  """The machine's float32 matrix-product rate: ``jnp.dot`` of two ``[n, n]`` matrices (and
  ``torch.mm`` where PyTorch is installed), timed by :func:`compare_blocks`.

  Returns:
    ``{"n": n, "jnp.dot": GFLOP/s, "torch.mm": GFLOP/s or None}``, counting ``2 n**3`` FLOPs.
  """
  import numpy as np
  rng = np.random.default_rng(0)
  a = jax.numpy.asarray(rng.standard_normal((n, n)), jax.numpy.float32)
  b = jax.numpy.asarray(rng.standard_normal((n, n)), jax.numpy.float32)
  compiled = jax.jit(jax.numpy.dot).lower(a, b).compile()
  fns = {"jnp.dot": lambda: compiled(a, b)}
  torch = torch_or_none()
  if torch is not None:
    at = torch.from_numpy(np.array(a)).to(TORCH_DEVICE)
    bt = torch.from_numpy(np.array(b)).to(TORCH_DEVICE)
    fns["torch.mm"] = lambda: torch.mm(at, bt)
  for fn in fns.values():
    _block(fn())
  medians = compare_blocks(fns, blocks=blocks, calls=calls, idle=idle)
  rates = {label: 2 * n ** 3 / t / 1e9 for label, t in medians.items()}
  return {"n": n, "jnp.dot": rates["jnp.dot"], "torch.mm": rates.get("torch.mm")}


def torch_flops(fn: Callable[[], object]) -> int | None:
  """The FLOPs of one call of a PyTorch computation, counted analytically from the shapes of its
  convolutions and matrix products (``torch.utils.flop_counter``: two per multiply-add, the
  backward's products included); ``None`` where PyTorch cannot count or counts nothing."""
  try:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
      _block(fn())
    flops = int(counter.get_total_flops())
  except Exception:  # an operation the counter does not know
    return None
  return flops or None


def format_row(label: str, medians: Mapping[str, float], baseline: str) -> str:
  """One table row: each candidate's median in ms and its ratio to ``baseline``."""
  base = medians[baseline]
  cells = [f"{name}={t * 1e3:.2f}ms ({t / base:.2f}x)" for name, t in medians.items()]
  return f"{label}: " + ", ".join(cells)


@dataclasses.dataclass
class Candidate:
  """One way of computing a benchmark case.

  Attributes:
    label: the name in the table, e.g. ``"jaxup"``, ``"lax"``, ``"jax.image"``, ``"torch"``.
    fn: for ``framework="jax"`` a function of ``args`` (it is jitted by the runner, which also
      records its compile time and ``memory_analysis()``); for ``"torch"`` a zero-argument
      callable that runs the PyTorch computation once.
    args: the arguments of ``fn`` (jax arrays) for ``"jax"``; unused for ``"torch"``.
    framework: ``"jax"`` or ``"torch"``.
    check: whether the runner checks its output against the first candidate's before timing
      (``False`` for a reference pass that computes something else, such as one elementwise
      pass over an output-sized array). A ``"torch"`` candidate returns its tensors in the jax
      candidates' axis order (a ``permute`` view, which costs nothing).
    to_compare: where the output needs rearranging to be compared (PyTorch's gradients, say,
      into the jax candidates' parameter tree), a function of the output that does it, applied
      only for the check, never in a timed call.
  """

  label: str
  fn: Callable
  args: tuple = ()
  framework: str = "jax"
  check: bool = True
  to_compare: Callable | None = None


@dataclasses.dataclass
class Case:
  """A benchmark case: candidates computing the same thing, compared against ``baseline``.

  Attributes:
    name: the row's name, with the shape, e.g. ``"resize lanczos3 2x (8, 64, 64, 32)"``.
    group: the table it belongs to: ``"operators"``, ``"blocks"`` (decoder blocks), ...
    mode: ``"forward"`` or ``"train"`` (forward + backward).
    candidates: the candidates; the first is jaxup's.
    baseline: the label of the candidate the ratios are taken against.
    tolerance: the largest ``max|a - b| / max|b|`` between checked candidates' outputs.
    flops: the FLOPs of one call, for the GFLOP/s column; ``None`` lets the runner count them
      from the PyTorch candidate (:func:`torch_flops`), if there is one.
  """

  name: str
  group: str
  mode: str
  candidates: list
  baseline: str
  tolerance: float = 1e-3
  flops: float | None = None


def torch_or_none():
  """PyTorch with one thread per core (the size of XLA:CPU's pool), or ``None`` if absent."""
  try:
    import torch
  except ImportError:
    return None
  import os
  torch.set_num_threads(os.cpu_count())
  return torch


def torch_channels_last(torch, x):
  """A channels-last jax/NumPy array ``[N, *S, C]`` as a PyTorch ``[N, C, *S]`` tensor whose
  memory is channels-last (``torch.channels_last`` / ``channels_last_3d``)."""
  import numpy as np
  t = torch.from_numpy(np.array(x))
  t = t.permute(0, t.ndim - 1, *range(1, t.ndim - 1))
  fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(t.ndim)
  t = t.to(TORCH_DEVICE)
  return t.contiguous(memory_format=fmt) if fmt is not None else t.contiguous()


def channels_last_view(t):
  """A PyTorch ``[N, C, *S]`` tensor viewed as ``[N, *S, C]`` (no copy)."""
  return t.permute(0, *range(2, t.ndim), 1)


def torch_kernel(torch, kernel):
  """A jaxup kernel ``[*K, I, O]`` as a PyTorch weight ``[O, I, *K]`` (convolution) or, for a
  transposed convolution's forward kernel ``[*K, O, I]``, its ``[I, O, *K]`` weight."""
  import numpy as np
  k = np.array(kernel)
  n = k.ndim - 2
  return torch.from_numpy(np.ascontiguousarray(k.transpose(n + 1, n, *range(n)))).to(TORCH_DEVICE)


def kernel_view(g):
  """A PyTorch weight or its gradient ``[O, I, *K]`` viewed as the jaxup kernel ``[*K, I, O]``."""
  return g.permute(*range(2, g.ndim), 1, 0)
