"""Checks for autodiff consistency tests of linear operators, jaxup's and your own.

* :func:`assert_adjoint`: the dot-product identity ``<up(x), y> == <x, down(y)>`` of an
  up-sampler and the down-sampler you name.
* :func:`assert_transpose_is_vjp`: a transposed operator equals the VJP of its forward
  operator.
* :func:`assert_linear_transpose`: ``jax.linear_transpose`` of an up-sampler equals the
  down-sampler you name.
* :func:`tolerance`: the per-dtype tolerance these checks default to.

jaxup's own tests use these checks for every upsampler.
"""

from jaxup._src.testing import assert_adjoint as assert_adjoint
from jaxup._src.testing import assert_linear_transpose as assert_linear_transpose
from jaxup._src.testing import assert_transpose_is_vjp as assert_transpose_is_vjp
from jaxup._src.testing import tolerance as tolerance

__all__ = [
    "assert_adjoint",
    "assert_linear_transpose",
    "assert_transpose_is_vjp",
    "tolerance",
]
