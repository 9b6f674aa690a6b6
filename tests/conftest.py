"""Shared fixtures: the real MovieLens copies in ../shared/data and small data sets the tests build."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

from recnb.data import build_sequences
from recnb.data.readers import read_release
from recnb.data.split import leave_one_out
from recnb.data.synthetic import write_synthetic_movielens
from tests.helpers import REPO


def real_data_dir() -> Path:
    """RECNB_DATA_DIR if set, else ../shared/data beside the repository."""
    return Path(os.environ.get("RECNB_DATA_DIR") or REPO.parent / "shared" / "data")


def _require(folder: Path) -> Path:
    if not folder.is_dir():
        message = f"real MovieLens data not found at {folder}; set RECNB_DATA_DIR"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI always has ../shared/data: a missing copy is an error there
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def ml1m_dir() -> Path:
    return _require(real_data_dir() / "ml-1m")


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    return _require(real_data_dir() / "ml-100k")


@pytest.fixture(scope="session")
def ml1m_raw(ml1m_dir):
    return read_release("ml-1m", ml1m_dir)


@pytest.fixture(scope="session")
def ml1m(ml1m_raw):
    return build_sequences(ml1m_raw)


@pytest.fixture(scope="session")
def ml1m_split(ml1m):
    return leave_one_out(ml1m.sequences)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    return write_synthetic_movielens(tmp_path_factory.mktemp("synthetic") / "synthetic")


@pytest.fixture(scope="session")
def synthetic(synthetic_dir):
    return build_sequences(read_release("ml-1m", synthetic_dir), name="synthetic")


@pytest.fixture
def umask():
    """Set the process's umask to 0o022 for one test and restore it afterwards; yields os.umask to set another."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.fixture
def close_figures():
    """Close every matplotlib figure after the test, so figures do not pile up across a module's tests."""
    yield
    import matplotlib.pyplot as plt  # here, not at the top: a test module chooses the backend before pyplot loads

    plt.close("all")


# ----------------------------------------------------------------------------- test tiers
#: Fixtures that read the real MovieLens copies.
REAL_DATA_FIXTURES = {"ml1m_dir", "ml100k_dir", "ml1m_raw", "ml1m", "ml1m_split"}
#: Modules that drive other programs: a browser, nbgrader, the linter, fresh Python processes.
INTEGRATION_MODULES = {"test_browser", "test_assignments", "test_lint", "test_benchmark"}


def _tier(item) -> str:
    """``integration`` (other programs, notebooks), ``ml1m`` (the real data) or ``unit`` (data the test builds)."""
    module = getattr(item, "module", None)
    function = getattr(item, "function", None)
    if module is None or module.__name__.rsplit(".", 1)[-1] in INTEGRATION_MODULES:
        return "integration"  # nbval's notebook cells have no module
    if function is not None and "subprocess." in inspect.getsource(function):
        return "integration"
    if REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "ml1m"
    return "unit"


def pytest_collection_modifyitems(config, items):
    """Mark every test with its tier, so `-m unit` is the fast loop and `-m "not integration"` skips the slow tools."""
    for item in items:
        item.add_marker(getattr(pytest.mark, _tier(item)))
