"""jaxup.functional against PyTorch's own test data: the OpInfo sample and error inputs.

PyTorch describes each operator of its test suite by an ``OpInfo``
(``torch.testing._internal.common_methods_invocations.op_db``): sample inputs that cover its
arguments and error inputs that it must refuse. For every operator ``jaxup.functional``
mirrors, each sample is called on both sides and compared, forward in every floating dtype
(float64 and float32 tightly, float16 and bfloat16 loosely) and backward in float64 (the VJP
against ``torch.autograd.grad``); each error input must raise ``ValueError`` or ``TypeError``
in jaxup where PyTorch raises. The samples are collected once, at import, so each is its own
test id; what is left out is in ``EXCLUDED`` below, each with its reason.

Run time: PyTorch's max-pool samples are a product of options with many repeats (864, 1440
and 576 of them); every one runs forward in float64, float32 and float16 with
``return_indices=True`` only where PyTorch's own sample asks for it, and the bfloat16 forward
and float64 VJP of max pooling run on every fourth sample (a deterministic subset: the
samples come in a fixed order). Every other operator runs every sample in every test.
"""

from __future__ import annotations

import os
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxup.functional as F

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it
_cmi = pytest.importorskip("torch.testing._internal.common_methods_invocations")

# OpInfo (name, variant) -> the jaxup.functional function of the same signature.
OPS = {
    ("nn.functional.conv1d", ""): F.conv1d,
    ("nn.functional.conv2d", ""): F.conv2d,
    ("nn.functional.conv3d", ""): F.conv3d,
    ("nn.functional.conv_transpose1d", ""): F.conv_transpose1d,
    ("nn.functional.conv_transpose2d", ""): F.conv_transpose2d,
    ("nn.functional.conv_transpose3d", ""): F.conv_transpose3d,
    **{("nn.functional.interpolate", mode): F.interpolate for mode in (
        "nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")},
    ("nn.functional.max_pool1d", ""): F.max_pool1d,
    ("nn.functional.max_pool2d", ""): F.max_pool2d,
    ("nn.functional.max_pool3d", ""): F.max_pool3d,
    **{("nn.functional.max_unpool" + n, variant): getattr(F, "max_unpool" + n)
       for n in ("1d", "2d", "3d") for variant in ("", "grad")},
    ("nn.functional.pixel_shuffle", ""): F.pixel_shuffle,
    ("nn.functional.pixel_unshuffle", ""): F.pixel_unshuffle,
    ("nn.functional.grid_sample", ""): F.grid_sample,
}

DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
          "bfloat16": torch.bfloat16}
# Tolerance relative to the largest magnitude of PyTorch's result (at least 1).
TOLERANCE = {"float64": 1e-10, "float32": 1e-5, "float16": 2e-2, "bfloat16": 1e-1}

# Every sample or error input left out, one row each: (operator, test, which, reason).
# ``which`` is a predicate on the sample; ``test`` is "forward", "vjp", "error" or "*".
EXCLUDED = [
    ("nn.functional.max_unpool{1,2,3}d", "vjp", lambda s: _has_duplicate_indices(s),
     "indices from overlapping pooling windows name one position twice; the forward writes "
     "one of the (equal) values there, so its derivative sends the cotangent at that "
     "position to one input (jaxup's VJP), while PyTorch's backward gathers it to every "
     "duplicate, which is not the derivative of its own forward: PyTorch's OpInfo drops "
     "these samples from its max_unpool 'grad' variant for that reason, as gradcheck fails "
     "on them (sample_inputs_max_unpool_grad)"),
]


def _has_duplicate_indices(sample) -> bool:
  """Whether some (batch, channel) plane of a max_unpool sample's indices repeats an index."""
  indices = sample.args[0]
  planes = indices.reshape(indices.shape[0] * indices.shape[1], -1).tolist()
  return any(len(set(plane)) < len(plane) for plane in planes)


def _op_name_matches(pattern: str, name: str) -> bool:
  regex = re.escape(pattern).replace(r"\{1,2,3\}", "[123]")
  return re.fullmatch(regex, name) is not None


def _exclusion(name: str, test: str, sample) -> str | None:
  for pattern, kind, which, reason in EXCLUDED:
    if kind in (test, "*") and _op_name_matches(pattern, name) and which(sample):
      return reason
  return None


def _spelled(value, n):
  """An int-or-tuple argument in one spelling: ``2`` and ``(2,)`` both become ``(2,) * n``."""
  if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
    return tuple(value) * n if len(value) == 1 else tuple(value)
  if isinstance(value, int) and not isinstance(value, bool):
    return (value,) * n
  return tuple(value) if isinstance(value, torch.Size) else value


def _configuration(op, sample):
  """What a pooling sample computes, whatever the spelling of its arguments: PyTorch's
  max-pool samples repeat each configuration with ``k`` and ``(k,)``, ``stride=None`` and
  ``stride=k``, and ``return_indices`` both ways (the values are the same)."""
  n = int(op.name[-2])
  kwargs = dict(sample.kwargs)
  kwargs.pop("return_indices", None)
  if kwargs.get("stride") is None:
    kwargs["stride"] = kwargs["kernel_size"]
  return (tuple(sample.input.shape), tuple(sorted((k, _spelled(v, n)) for k, v in
                                                  kwargs.items())))


def _distinct(op, samples):
  """``(index, sample)`` for each distinct configuration (pooling), or every sample; among
  repeats the one with ``return_indices=True`` is kept, so the indices are compared too."""
  if "pool" not in op.name:
    return list(enumerate(samples))
  kept = {}
  for i, sample in enumerate(samples):
    key = _configuration(op, sample)
    if key not in kept or sample.kwargs.get("return_indices") and not kept[key][1].kwargs.get(
        "return_indices"):
      kept[key] = (i, sample)
  return sorted(kept.values(), key=lambda pair: pair[0])


# How many samples of each operator run by default, spread evenly over its distinct samples
# (deterministic: the same every run). Each call compiles a new XLA program, a few tenths of a
# second, so every sample in every dtype is minutes; JAXUP_OPINFO_ALL=1 runs them all.
ALL = os.environ.get("JAXUP_OPINFO_ALL", "") not in ("", "0")
PER_OPERATOR = {"float64": 3, "float32": 2, "float16": 1, "bfloat16": 1, "vjp": 2}


def _spread(indexed, count):
  """``count`` of the ``(index, sample)`` pairs, evenly spaced from first to last (all with
  ``JAXUP_OPINFO_ALL``)."""
  if ALL or len(indexed) <= count:
    return indexed
  picks = np.unique(np.linspace(0, len(indexed) - 1, count).round().astype(int))
  return [indexed[p] for p in picks]


def _param(values, test_id, name, test, sample):
  reason = _exclusion(name, test, sample)
  return pytest.param(*values, id=test_id,
                      marks=[pytest.mark.skip(reason=reason)] if reason else [])


def _collect():
  forward, vjp, errors = [], [], []
  for op in _cmi.op_db:
    key = (op.name, op.variant_test_name)
    if key not in OPS:
      continue
    label = op.name.removeprefix("nn.functional.") + (
        f"[{op.variant_test_name}]" if op.variant_test_name else "")
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      # The generators behind op.sample_inputs / op.error_inputs, called directly: those
      # wrappers walk the Python stack once per item to find a unittest test, seconds per
      # operator under pytest. Seeded once per operator, so the samples are the same each run.
      torch.manual_seed(0)
      samples = list(op.sample_inputs_func(op, "cpu", torch.float64, False))
      torch.manual_seed(0)
      error_inputs = [] if op.error_inputs_func is None else list(
          op.error_inputs_func(op, "cpu"))
    supported = op.supported_dtypes("cpu")
    distinct = _distinct(op, samples)
    for dtype_name, dtype in DTYPES.items():
      if dtype in supported:
        for i, sample in _spread(distinct, PER_OPERATOR[dtype_name]):
          forward.append(_param((op, sample, dtype_name), f"{label}-{i}-{dtype_name}", op.name,
                                "forward", sample))
    for i, sample in _spread(distinct, PER_OPERATOR["vjp"]):
      vjp.append(_param((op, sample), f"{label}-{i}", op.name, "vjp", sample))
    for i, error in enumerate(error_inputs):
      errors.append(_param((op, error), f"{label}-{i}", op.name, "error", error.sample_input))
  return forward, vjp, errors


FORWARD, VJP, ERRORS = _collect()


def _to_jax(value, dtype_name=None):
  """A sample's argument for jaxup: tensors as arrays (floating ones in ``dtype_name``)."""
  if isinstance(value, torch.Tensor):
    if value.is_floating_point() and dtype_name is not None:
      return jnp.asarray(value.double().numpy(), dtype=dtype_name)
    if value.dtype == torch.bfloat16:
      return jnp.asarray(value.float().numpy(), dtype=jnp.bfloat16)
    return jnp.asarray(value.detach().numpy())
  if isinstance(value, torch.Size):
    return tuple(value)
  if isinstance(value, (list, tuple)):
    return type(value)(_to_jax(v, dtype_name) for v in value)
  if isinstance(value, dict):
    return {k: _to_jax(v, dtype_name) for k, v in value.items()}
  return value


def _to_torch(value, dtype):
  if isinstance(value, torch.Tensor):
    return value.to(dtype) if value.is_floating_point() else value
  if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
    return type(value)(_to_torch(v, dtype) for v in value)
  if isinstance(value, dict):
    return {k: _to_torch(v, dtype) for k, v in value.items()}
  return value


def _numpy(value):
  if isinstance(value, torch.Tensor):
    value = value.detach()
    return (value.double() if value.is_floating_point() else value).numpy()
  return np.asarray(jnp.asarray(value, jnp.float64) if jnp.issubdtype(
      jnp.asarray(value).dtype, jnp.floating) else value)


def _assert_close(got, expected, tol, what):
  got, expected = _numpy(got), _numpy(expected)
  assert got.shape == expected.shape, f"{what}: shape {got.shape} != PyTorch's {expected.shape}"
  if np.issubdtype(expected.dtype, np.integer):
    np.testing.assert_array_equal(got, expected, err_msg=what)
    return
  scale = max(1.0, float(np.max(np.abs(expected), initial=0.0, where=np.isfinite(expected))))
  np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale, err_msg=what)


def _torch_call(op, inputs, args, kwargs):
  with warnings.catch_warnings():  # PyTorch's own advice (align_corners defaults, 'same')
    warnings.simplefilter("ignore")
    return op.op(inputs, *args, **kwargs)


@pytest.mark.parametrize("op,sample,dtype_name", FORWARD)
def test_forward_matches_torch(op, sample, dtype_name):
  dtype = DTYPES[dtype_name]
  t_input, t_args, t_kwargs = (_to_torch(v, dtype) for v in (sample.input, sample.args,
                                                              sample.kwargs))
  expected = _torch_call(op, t_input, t_args, t_kwargs)
  fn = OPS[op.name, op.variant_test_name]
  got = fn(_to_jax(sample.input, dtype_name), *_to_jax(sample.args, dtype_name),
           **_to_jax(sample.kwargs, dtype_name))
  if isinstance(expected, tuple):
    assert isinstance(got, tuple) and len(got) == len(expected)
    for g, e, what in zip(got, expected, ("values", "indices")):
      _assert_close(g, e, TOLERANCE[dtype_name], what)
  else:
    assert not isinstance(got, tuple)
    assert got.dtype == jnp.dtype(dtype_name)
    _assert_close(got, expected, TOLERANCE[dtype_name], "output")


def _leaves(sample):
  """Paths (("input",), ("args", i)) of the floating tensors a sample differentiates."""
  paths = [("input",)] if sample.input.is_floating_point() else []
  paths += [("args", i) for i, a in enumerate(sample.args)
            if isinstance(a, torch.Tensor) and a.is_floating_point()]
  return paths


def _with_leaves(sample, leaves, convert):
  values = dict(zip(_leaves(sample), leaves))
  inputs = values.get(("input",), convert(sample.input))
  args = [values.get(("args", i), convert(a)) for i, a in enumerate(sample.args)]
  return inputs, args, {k: convert(v) for k, v in sample.kwargs.items()}


@pytest.mark.parametrize("op,sample", VJP)
def test_vjp_matches_torch_autograd(op, sample):
  paths = _leaves(sample)
  t_leaves = [(sample.input if p == ("input",) else sample.args[p[1]]).detach().double()
              .requires_grad_(True) for p in paths]
  t_input, t_args, t_kwargs = _with_leaves(sample, t_leaves, lambda v: v)
  out = _torch_call(op, t_input, t_args, t_kwargs)
  out = out[0] if isinstance(out, tuple) else out
  cotangent = torch.from_numpy(np.random.default_rng(0).standard_normal(tuple(out.shape)))
  expected = torch.autograd.grad(out, t_leaves, cotangent, allow_unused=True)

  fn = OPS[op.name, op.variant_test_name]

  def call(*leaves):
    inputs, args, kwargs = _with_leaves(sample, leaves, _to_jax)
    y = fn(inputs, *args, **kwargs)
    return y[0] if isinstance(y, tuple) else y

  y, pullback = jax.vjp(call, *[_to_jax(t.detach()) for t in t_leaves])
  got = pullback(jnp.asarray(cotangent.numpy(), y.dtype))
  for path, g, e in zip(paths, got, expected):
    e = torch.zeros_like(t_leaves[paths.index(path)]) if e is None else e
    _assert_close(g, e, 1e-10, f"gradient of {path}")


@pytest.mark.parametrize("op,error", ERRORS)
def test_error_inputs_raise(op, error):
  sample = error.sample_input
  with pytest.raises(error.error_type):  # PyTorch refuses the call ...
    _torch_call(op, sample.input, sample.args, sample.kwargs)
  fn = OPS[op.name, op.variant_test_name]
  with pytest.raises((ValueError, TypeError)):  # ... and so does jaxup, by name
    fn(_to_jax(sample.input), *_to_jax(sample.args), **_to_jax(sample.kwargs))


def test_every_operator_has_samples():
  names = {p.values[0].name for p in FORWARD}
  assert names == {name for name, _ in OPS}
