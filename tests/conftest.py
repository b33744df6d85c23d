"""Shared fixtures.

Real-data tests read the public samples described in ``../shared/data/MANIFEST.md``. The
location is ``$LM_ZOO_SHARED_DATA`` or ``--shared-data``, defaulting to ``../shared/data``
beside the checkout; tests skip with the path in the reason when it is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_addoption(parser):
    parser.addoption(
        "--shared-data",
        default=os.environ.get("LM_ZOO_SHARED_DATA", str(DEFAULT_SHARED_DATA)),
        help="folder holding the real public samples (see ../shared/data/MANIFEST.md)",
    )


@pytest.fixture(scope="session")
def shared_data(request) -> Path:
    path = Path(request.config.getoption("--shared-data"))
    if not (path / "MANIFEST.md").exists():
        pytest.skip(f"real sample data not found at {path} (set LM_ZOO_SHARED_DATA or --shared-data)")
    return path


def shared_file(shared_data: Path, relative: str) -> Path:
    """One file of the shared samples, skipping the test when that file is missing."""
    path = shared_data / relative
    if not path.exists():
        pytest.skip(f"shared sample {path} is absent")
    return path


@pytest.fixture(scope="session")
def assert_same_examples():
    """Compare two builds' examples (split -> feature -> array, as ``tfds.as_numpy(batch_size=-1)``
    gives them): same splits, same features, equal arrays."""
    import numpy as np

    def check(a: dict, b: dict) -> None:
        assert a.keys() == b.keys()
        for split in a:
            assert a[split].keys() == b[split].keys()
            for feature in a[split]:
                np.testing.assert_array_equal(a[split][feature], b[split][feature], err_msg=f"{split}/{feature}")

    return check
