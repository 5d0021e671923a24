"""Every ``Examples`` section of the package's docstrings runs and prints what it shows (a
docstring example that drifted from the code teaches users wrong numbers)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import delssome_norms

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(delssome_norms.__path__, f"{delssome_norms.__name__}.")
)


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    return [t for t in tests if t.examples]


WITH_EXAMPLES = [name for name in MODULES if _examples(name)]


def test_the_package_has_examples() -> None:
    assert len(WITH_EXAMPLES) >= 10, WITH_EXAMPLES  # the finder is looking at the package


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run_as_written(name: str) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in _examples(name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
