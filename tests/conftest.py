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


@pytest.fixture
def crm_sandbox():
    """The tiny company's sandbox over real HTTP, with nothing kept between tests."""
    from sandbox.server import SandboxServer, build_sandbox

    with SandboxServer(build_sandbox(scale="tiny", seed=7)) as server:
        yield server
