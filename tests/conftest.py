"""Shared fixtures.

QGIS is started by pytest-qgis (settings in pytest.ini) after tests/qgis_environment.py has made the process
headless; the fixtures here bring the FERS plugin into that QGIS the way QGIS itself does.
"""
import pytest

from fers_qgis import classFactory


@pytest.fixture
def fers_plugin(qgis_processing, qgis_iface):
    """The plugin created through classFactory with its Processing provider registered (per test: cheap, and
    tests that check registration themselves start from a registry without it)."""
    plugin = classFactory(qgis_iface)
    plugin.initProcessing()
    yield plugin
    plugin.unload()


@pytest.fixture
def output_dir(tmp_path):
    """An empty folder for the output alone, so a test can see that a failed run left nothing behind."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder
