"""Suite-wide settings: offline hubs, headless plotting, and a folder the xdist workers share."""

from __future__ import annotations

import os

# Set before any test imports transformers/datasets/matplotlib.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The folder for results every worker needs once (conftest_tasks._shared): made by the controller
# before it starts the workers, which inherit its environment, and removed when the run ends.
SHARED_DIR_ENV = "KGREASON_TEST_SHARED_DIR"


def pytest_configure(config) -> None:
    # Always a fresh folder (never one named in the caller's environment): pickles left by older
    # code would hide a generator change.
    if not hasattr(config, "workerinput"):
        import tempfile

        os.environ[SHARED_DIR_ENV] = tempfile.mkdtemp(prefix="kgreason-tests-shared-")
        config._kgreason_shared_dir = os.environ[SHARED_DIR_ENV]
        # `datasets` caches what load_dataset reads under a name made from the folder's path, and
        # pytest reuses temp paths across runs: a test would read an older run's export. The
        # workers inherit this and import `datasets` after it is set.
        os.environ["HF_DATASETS_CACHE"] = os.path.join(os.environ[SHARED_DIR_ENV], "hf-datasets-cache")


def pytest_unconfigure(config) -> None:
    folder = getattr(config, "_kgreason_shared_dir", None)
    if folder:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(SHARED_DIR_ENV, None)
