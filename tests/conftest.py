"""Shared pytest fixtures.

``cbig_dir`` points at the paper's reference inputs/outputs in ``../shared/external/cbig_delssome``
(next to the repository); tests that need it are skipped with a clear reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_EXTERNAL = Path(
    os.environ.get("DELSSOME_SHARED_EXTERNAL", REPO_ROOT.parent / "shared" / "external")
)


@pytest.fixture(scope="session")
def cbig_dir() -> Path:
    """Folder ``cbig_delssome/examples/indiv_level`` of the reference data (skips if absent)."""
    path = SHARED_EXTERNAL / "cbig_delssome" / "examples" / "indiv_level"
    if not path.is_dir():
        pytest.skip(f"reference data not found at {path} (../shared/external is absent)")
    return path


@pytest.fixture(scope="session")
def cbig_root() -> Path:
    """Folder ``cbig_delssome`` of the reference data (skips if absent)."""
    path = SHARED_EXTERNAL / "cbig_delssome"
    if not path.is_dir():
        pytest.skip(f"reference data not found at {path} (../shared/external is absent)")
    return path


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (small sequential ops run fastest so on a shared 2-core
    machine); the previous thread count is restored."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
