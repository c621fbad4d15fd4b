"""Every test session gets its own data home, so tests never touch a developer's `.handoff/`."""

import os
import tempfile
from pathlib import Path

import pytest

# Set before anything imports the pipeline: the code location reads its data home at import.
SESSION_HOME = Path(tempfile.mkdtemp(prefix="handoff-test-home-"))
os.environ["HANDOFF_HOME"] = str(SESSION_HOME)
os.environ.pop("HANDOFF_CONNECTION_FILE", None)
for name in ("HANDOFF_CRM_BASE_URL", "HANDOFF_CRM_ACCESS_TOKEN"):
    os.environ.pop(name, None)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """The tiny company (seed 7), generated once per test session."""
    from sandbox.simulation import generate

    folder = tmp_path_factory.mktemp("tiny-dataset")
    generate(folder, scale="tiny", seed=7)
    return folder


@pytest.fixture
def crm_sandbox(tiny_dataset, tmp_path):
    """The tiny company's sandbox over real HTTP, fresh for each test."""
    from sandbox.server import SandboxServer, build_sandbox

    with SandboxServer(build_sandbox(tmp_path / "sandbox-state", dataset_dir=tiny_dataset)) as server:
        yield server
