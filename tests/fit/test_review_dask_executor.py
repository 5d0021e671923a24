"""The Dask executor as a cluster meets it: a wrong scheduler address, workers that do not see the
output folder or the inputs, a worker of another version, a group whose worker dies, no dask.

The worker-side conditions are simulated by patching the worker processes of a 2-process
LocalCluster (``client.run``): the checks themselves run unpatched on the workers.
"""

from __future__ import annotations

import socket
import sys
import threading
import warnings
from pathlib import Path

import pandas as pd
import pytest
from fit_helpers import dask_cohort_settings, write_manifest

import delssome_norms.fit.cohort as cohort
from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import dask_executor, run_cohort

distributed = pytest.importorskip("dask.distributed")


def _cluster(**config):
    import dask

    with dask.config.set(config):
        return distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )


def _run(manifest: Path, out: Path, address: str, seed: int = 2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_cohort(
            manifest,
            out,
            dask_cohort_settings(seed),
            executor="dask",
            scheduler=address,
            group_size=1,
            quiet=True,
        )


@pytest.fixture
def server():
    """A TCP port whose server speaks HTTP-ish (``answer``) or nothing (``None``)."""
    listeners = []

    def start(answer: bytes | None) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        listeners.append(sock)
        conns = []

        def serve():
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return
                conns.append(conn)
                if answer is not None:
                    conn.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for sock in listeners:
        sock.close()


@pytest.mark.timeout(60)
def test_a_port_that_accepts_but_is_no_scheduler_fails_in_one_line(
    tmp_path: Path, monkeypatch, server
) -> None:
    """distributed's connect waited for ever for the handshake of a silent port, and reported a
    port answering HTTP as 'out of memory' (MemoryError)."""
    monkeypatch.setattr(cohort, "DASK_CONNECT_TIMEOUT_S", 1)
    manifest = write_manifest(tmp_path, 1, scan=7.2)
    silent = server(None)
    with pytest.raises(InvalidInputError, match="did not answer as a Dask scheduler") as err:
        _run(manifest, tmp_path / "out", silent)
    assert err.value.source == "--scheduler" and silent in str(err.value)
    http = server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + b"x" * 64)
    with pytest.raises(InvalidInputError, match="something other than a Dask scheduler"):
        _run(manifest, tmp_path / "out", http)
    assert not (tmp_path / "out").exists()


def test_without_dask_the_message_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails
    manifest = write_manifest(tmp_path, 1, scan=7.2)
    with pytest.raises(InvalidInputError, match=r"delssome_norms\[cluster\]"):
        _run(manifest, tmp_path / "out", "tcp://127.0.0.1:8786")


def test_workers_without_the_clients_folders_or_version_are_refused(tmp_path: Path, monkeypatch):
    """Nodes with other mounts wrote results onto their local disks (reported as done) or failed
    every subject; a worker of another delssome_norms version ran anyway."""
    manifest = write_manifest(tmp_path, 2, scan=7.2)
    hidden_out, hidden_data = str(tmp_path / "hidden"), str(tmp_path / "data")

    def other_mounts(hidden_out=hidden_out, hidden_data=hidden_data):
        import builtins
        import os.path

        real_open, real_exists = builtins.open, os.path.exists

        def open_(path, *a, **k):
            if str(path).startswith(hidden_out):
                raise FileNotFoundError(2, "No such file or directory", str(path))
            return real_open(path, *a, **k)

        builtins.open = open_
        os.path.exists = lambda p: not str(p).startswith(hidden_data) and real_exists(p)

    with _cluster() as cluster, distributed.Client(cluster) as client:
        client.run(other_mounts)
        with pytest.raises(InvalidInputError, match="does not see the output folder") as err:
            _run(manifest, tmp_path / "hidden", cluster.scheduler_address)
        assert err.value.source == "--out-dir" and hidden_out in str(err.value)
        with pytest.raises(InvalidInputError, match="cannot see input file") as err:
            _run(manifest, tmp_path / "visible", cluster.scheduler_address)
        assert hidden_data in str(err.value)
        # a worker that joins after the start is checked by its first task
        with monkeypatch.context() as m:
            m.setattr(dask_executor, "check_workers", lambda *a, **k: None)
            with pytest.raises(InvalidInputError, match=r"Dask worker tcp://.* does not see"):
                _run(manifest, tmp_path / "hidden", cluster.scheduler_address)

        def old_version():
            import delssome_norms

            delssome_norms.__version__ = "0.0.1"

        client.run(old_version)
        with pytest.raises(InvalidInputError, match=r"runs delssome_norms 0\.0\.1 \(the client: "):
            _run(manifest, tmp_path / "other", cluster.scheduler_address)
    for out in ("hidden", "visible", "other"):
        assert not list((tmp_path / out).glob("sub-*")), out  # refused before any work
        assert not list((tmp_path / out).glob(".delssome-norms.dask-check-*"))


def test_a_group_whose_worker_dies_fails_alone(tmp_path: Path) -> None:
    """KilledWorker (a worker OOM-killed or crashing while running a group) stopped the whole
    cohort with a traceback; now that group's subjects are listed in failures.csv and the other
    groups finish."""
    manifest = write_manifest(tmp_path, 2, scan=7.2)

    def crash_on_sub00():
        import os

        from delssome_norms.fit import cohort

        real = cohort.fit_group

        def fit_group(subjects, *a, **k):
            if subjects[0].subject_id == "sub-00":
                os._exit(1)
            return real(subjects, *a, **k)

        cohort.fit_group = fit_group

    config = {
        "distributed.scheduler.allowed-failures": 0,
        "distributed.scheduler.worker-saturation": 1.0,  # only the running task is suspected
    }
    with _cluster(**config) as cluster, distributed.Client(cluster) as client:
        client.run(crash_on_sub00)
        summary = _run(manifest, tmp_path / "out", cluster.scheduler_address)
    assert (summary.done, summary.failed) == (1, 1)
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert failures["subject_id"].tolist() == ["sub-00"]
    assert failures["stage"].tolist() == ["worker"]
    assert "died" in failures["error"][0] and "rerun" in failures["error"][0]
    assert (tmp_path / "out" / "sub-01" / "EI_ratio.csv").is_file()
