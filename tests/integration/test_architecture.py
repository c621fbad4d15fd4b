"""The rules of the layout: the product never needs the simulator, and loading it writes nothing."""

import ast
import os
import subprocess
import sys

from pipeline.settings import PROJECT_DIR

# Run in a fresh interpreter in which the simulator package cannot be imported, as where it is not installed.
WITHOUT_SIMULATOR = """
import sys

class NoSimulator:
    def find_spec(self, name, path=None, target=None):
        if name == "sandbox" or name.startswith("sandbox."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoSimulator())
"""


def run_python(code: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        env={**os.environ, **environment},
        timeout=300,
    )


def test_no_module_of_the_product_imports_the_simulator():
    imports = []
    for path in (PROJECT_DIR / "pipeline").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            imports += [
                f"{path.relative_to(PROJECT_DIR)}: {name}"
                for name in names
                if name == "sandbox" or name.startswith("sandbox.")
            ]
    assert imports == []


def test_the_code_location_and_the_commands_load_without_the_simulator():
    loaded = run_python(
        WITHOUT_SIMULATOR
        + """
import pipeline.definitions
from pipeline.cli import app
from typer.testing import CliRunner

repository = pipeline.definitions.defs.get_repository_def()
print(len(repository.asset_graph.get_all_asset_keys()), sorted(job.name for job in repository.get_all_jobs()))
print(CliRunner().invoke(app, ["--help"]).output)
try:
    import sandbox
except ModuleNotFoundError:
    print("no simulator")
"""
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "'full_sync'" in loaded.stdout and "no simulator" in loaded.stdout
    assert all(command in loaded.stdout for command in ("sync", "feedback", "intake", "up"))
    assert "demo" not in loaded.stdout and "bench" not in loaded.stdout


def test_the_installed_command_has_the_simulators_commands_too():
    listed = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--help"], capture_output=True, text=True, cwd=PROJECT_DIR, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert all(command in listed.stdout for command in ("sync", "demo", "bench", "sandbox"))


def snapshot(root) -> dict[str, float]:
    """Every file under ``root`` with its modification time, but for caches and dbt's parse output."""
    skipped = {".venv", ".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "target", "logs"}
    files = {}
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in skipped]
        for name in names:
            if name == ".user.yml":  # dbt's own anonymous user id, which any dbt command may write
                continue
            path = os.path.join(folder, name)
            files[path] = os.stat(path).st_mtime
    return files


def test_importing_the_code_location_on_an_empty_data_home_writes_nothing(tmp_path):
    home = tmp_path / "home"
    before = snapshot(PROJECT_DIR)
    loaded = run_python("import pipeline.definitions", HANDOFF_HOME=str(home))
    assert loaded.returncode == 0, loaded.stderr
    assert not home.exists()
    assert snapshot(PROJECT_DIR) == before
