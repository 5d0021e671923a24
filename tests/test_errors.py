"""The shared exception types."""

from __future__ import annotations


def test_input_errors_cross_processes_with_their_source() -> None:
    """A worker's InvalidInputError was rebuilt from its message alone (source None, the source
    doubled into the problem)."""
    import pickle

    from delssome_norms.errors import InvalidInputError, NotFittedError

    for cls in (InvalidInputError, NotFittedError):
        err = pickle.loads(pickle.dumps(cls("expected 68 regions", "sub_FC.csv")))
        assert type(err) is cls
        assert (err.problem, err.source, str(err)) == (
            "expected 68 regions",
            "sub_FC.csv",
            "sub_FC.csv: expected 68 regions",
        )
