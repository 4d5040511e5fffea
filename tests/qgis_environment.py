"""Headless QGIS environment, loaded as an early pytest plugin (``-p tests.qgis_environment`` in pytest.ini).

It must run before pytest-qgis: that plugin starts QGIS in its ``pytest_load_initial_conftests`` hook, before any
conftest.py is imported, so variables set in a conftest come too late. pytest imports ``-p`` modules before the
plugins it finds through entry points, which makes this module the place for them.
"""
import atexit
import os
import shutil
import tempfile

# Qt without a display; pytest-qgis also sets this when qgis_gui_enabled = false.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Qt wants a private runtime directory (mode 0700) and warns on stderr without one.
if not os.environ.get("XDG_RUNTIME_DIR"):
    _runtime_dir = tempfile.mkdtemp(prefix="fers-qgis-xdg-")
    os.chmod(_runtime_dir, 0o700)
    os.environ["XDG_RUNTIME_DIR"] = _runtime_dir
    atexit.register(shutil.rmtree, _runtime_dir, ignore_errors=True)

# QGIS_CUSTOM_CONFIG_PATH is not set here: pytest-qgis always points it (and QSettings) at <rootdir>/.qgis-settings,
# a throw-away profile it writes on every run. Subprocesses (qgis_process) get their own temporary profile.
