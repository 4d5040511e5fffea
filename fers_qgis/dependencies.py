"""onnxruntime for QGIS's Python: a plugin-private install folder and the pip command that fills it.

QGIS's Python often lacks onnxruntime. It is installed with pip into a folder of the user's QGIS profile (it
survives plugin upgrades) with ``--no-deps``, so nothing else - above all not QGIS's numpy or GDAL - is touched.
The folder is put on ``sys.path`` when the plugin loads, so the core's lazy ``import onnxruntime`` finds it.
"""
import importlib.util
import os
import shutil
import sys
from typing import List, Optional

# Keep in step with requirements.txt (a test checks it).
ONNXRUNTIME_REQUIREMENT = "onnxruntime==1.32.0"


def private_site_dir(profile_dir: str) -> str:
    """The plugin-private package folder inside a QGIS profile folder, per Python version (wheels are)."""
    version = f"python{sys.version_info.major}{sys.version_info.minor}"
    return os.path.join(profile_dir, "fers_qgis", f"site-packages-{version}")


def add_to_path(site_dir: str) -> None:
    """Make packages installed in ``site_dir`` importable (last, so QGIS's own packages win)."""
    if site_dir not in sys.path:
        sys.path.append(site_dir)
        importlib.invalidate_caches()


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def python_executable() -> Optional[str]:
    """The Python interpreter behind QGIS: inside QGIS ``sys.executable`` is the QGIS program itself."""
    names = [f"python{sys.version_info.major}.{sys.version_info.minor}", f"python{sys.version_info.major}",
             "python.exe", "python"]
    folders = [os.path.join(sys.exec_prefix, "bin"), sys.exec_prefix, os.path.dirname(sys.executable)]
    for folder in folders:
        for name in names:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return shutil.which(names[0]) or shutil.which(names[1])


def pip_install_arguments(site_dir: str) -> List[str]:
    """Arguments after the interpreter: pip installs the pinned onnxruntime alone into ``site_dir``."""
    return ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--upgrade", "--no-deps",
            "--target", site_dir, ONNXRUNTIME_REQUIREMENT]
