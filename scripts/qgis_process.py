"""Run QGIS's ``qgis_process.bin`` headless with this repository's plugin enabled in a private profile.

Debian's ``qgis_process`` wrapper script is broken, so the binary is called directly. The profile folder keeps the
user's own QGIS settings untouched; ``plugins enable`` is what makes a plugin's provider visible to qgis_process.
"""
import os
import shutil
import subprocess
import tempfile
from typing import Dict, Sequence

from fers_qgis import dependencies

# The folder holding the plugin this process imports: the checkout, or a profile's plugins folder.
PLUGIN_PATH = os.path.dirname(os.path.dirname(os.path.abspath(dependencies.__file__)))
PLUGIN_NAME = "fers_qgis"
QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"


def headless_environment(profile_dir: str, plugin_path: str = PLUGIN_PATH) -> Dict[str, str]:
    """Environment for an offscreen qgis_process using ``profile_dir`` and plugins found in ``plugin_path``."""
    runtime_dir = os.path.join(profile_dir, "runtime")
    os.makedirs(runtime_dir, mode=0o700, exist_ok=True)
    environment = dict(os.environ)
    environment.update({
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": runtime_dir,
        "QGIS_CUSTOM_CONFIG_PATH": profile_dir,
        "QGIS_PLUGINPATH": plugin_path,
    })
    return environment


def profile_settings_dir(profile_dir: str) -> str:
    """What QgsApplication.qgisSettingsDirPath() is for qgis_process with QGIS_CUSTOM_CONFIG_PATH=profile_dir."""
    return os.path.join(profile_dir, "profiles", "default")


def provide_onnxruntime(profile_dir: str) -> None:
    """Link this interpreter's onnxruntime into the profile's plugin-private folder, where the plugin looks.

    QGIS's Python is Debian's, without the venv: this is what "Install FERS dependencies" would do with pip,
    done instantly for development runs (demo, evaluation, tests).
    """
    import onnxruntime

    site_dir = dependencies.private_site_dir(profile_settings_dir(profile_dir))
    os.makedirs(site_dir, exist_ok=True)
    target = os.path.join(site_dir, "onnxruntime")
    if not os.path.lexists(target):
        os.symlink(os.path.dirname(onnxruntime.__file__), target)


def run(arguments: Sequence[str], profile_dir: str, plugin_path: str = PLUGIN_PATH, timeout: float = 600
        ) -> subprocess.CompletedProcess:
    """Run ``qgis_process.bin ARGUMENTS`` and return the finished process (output captured as text)."""
    return subprocess.run([QGIS_PROCESS, *arguments], env=headless_environment(profile_dir, plugin_path),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def run_algorithm(algorithm: str, parameters: Dict[str, str], profile_dir: str = "",
                  plugin_path: str = PLUGIN_PATH) -> subprocess.CompletedProcess:
    """Enable the plugin in a profile (a temporary one unless given) and run one of its algorithms."""
    if not profile_dir:
        with tempfile.TemporaryDirectory(prefix="fers-qgis-profile-") as temporary:
            return run_algorithm(algorithm, parameters, temporary, plugin_path)
    enabled = run(["plugins", "enable", PLUGIN_NAME], profile_dir, plugin_path)
    if enabled.returncode != 0 and "already enabled" not in enabled.stderr:  # a profile used before
        return enabled
    return run(["run", algorithm, "--", *(f"{key}={value}" for key, value in parameters.items())],
               profile_dir, plugin_path)
