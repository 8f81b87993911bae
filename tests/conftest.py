import os
import subprocess
import sys
import tempfile

import pytest


def pytest_configure(config):
    # Notebooks (nbval) and subprocesses inherit these: the quick profile, a throwaway workspace.
    os.environ["LABKIT_PROFILE"] = "quick"
    os.environ["LABKIT_HOME"] = tempfile.mkdtemp(prefix="labkit-test-ws-")


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A fresh, empty workspace for one test."""
    home = tmp_path / "workspace"
    monkeypatch.setenv("LABKIT_HOME", str(home))
    return home


def labkit_cli(*args, env=None, check=True):
    """Run the real `labkit` command in a child process; return the CompletedProcess."""
    proc = subprocess.run([sys.executable, "-m", "labkit.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"labkit {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc
