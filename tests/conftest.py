"""Fixtures shared by the test modules."""
import subprocess

import pytest


@pytest.fixture
def no_downloads(monkeypatch):
    """Any attempt to run pip or npm (a download) fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"test tried to run a subprocess: {args!r}")
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
