"""The public API keeps its shape: arrays and required factors first, options keyword-only,
a doctest example in every docstring."""

import inspect

import pytest

import jaxup

FUNCTIONS = [name for name in jaxup.__all__ if inspect.isfunction(getattr(jaxup, name))]


def test_all_is_sorted_and_complete():
  assert jaxup.__all__ == sorted(jaxup.__all__)
  # Every public name of the package (submodules aside) is in __all__, and nothing else is.
  public = {n for n in dir(jaxup)
            if not n.startswith("_") and not inspect.ismodule(getattr(jaxup, n))}
  assert public == set(jaxup.__all__), sorted(public ^ set(jaxup.__all__))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_options_are_keyword_only(name):
  params = inspect.signature(getattr(jaxup, name)).parameters.values()
  positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
  # At most the arrays and the factor that defines the operation (window, factor, size...).
  assert len(positional) <= 3, (name, [p.name for p in positional])
  assert all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params), name
  if name != "parse_layout" and "layout" in inspect.signature(getattr(jaxup, name)).parameters:
    layout = inspect.signature(getattr(jaxup, name)).parameters["layout"]
    assert layout.kind is layout.KEYWORD_ONLY and layout.default is None, name


@pytest.mark.parametrize("name", FUNCTIONS)
def test_docstring_has_an_example(name):
  doc = inspect.getdoc(getattr(jaxup, name))
  assert doc and ">>>" in doc, name
  assert "Raises:" in doc, name
