"""Timing and memory helpers shared by the benchmark scripts.

Each benchmark compares candidates on the same inputs in the same process: compile first
(timed separately), then alternate the candidates call by call and report medians, so that
drift of the machine hits every candidate alike. Results are blocked on before the clock stops.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Callable, Mapping

import jax


def _block(x):
  return jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)


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
  """

  label: str
  fn: Callable
  args: tuple = ()
  framework: str = "jax"


@dataclasses.dataclass
class Case:
  """A benchmark case: candidates computing the same thing, compared against ``baseline``.

  Attributes:
    name: the row's name, with the shape, e.g. ``"resize lanczos3 2x (8, 64, 64, 32)"``.
    group: the table it belongs to: ``"operators"``, ``"blocks"`` (decoder blocks), ...
    mode: ``"forward"`` or ``"train"`` (forward + backward).
    candidates: the candidates; the first is jaxup's.
    baseline: the label of the candidate the ratios are taken against.
  """

  name: str
  group: str
  mode: str
  candidates: list
  baseline: str
