"""An unreachable ``--scheduler`` is one line with the way forward (the address the cluster's
start script printed), not a bare timeout."""

from __future__ import annotations

import socket

import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import dask_executor

pytest.importorskip("dask.distributed")


def test_a_closed_port_names_the_address_to_give() -> None:
    with socket.socket() as s:  # a free port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InvalidInputError, match="cannot connect to the Dask scheduler") as err:
        dask_executor.connect(f"tcp://127.0.0.1:{port}", timeout=2)
    assert "the scheduler's address as the script that started it printed" in str(err.value)
    assert err.value.source == "--scheduler"
