"""onnxruntime for QGIS's Python: a plugin-private install folder and the pip command that fills it.

QGIS's Python often lacks onnxruntime. It is installed with pip into a folder of the user's QGIS profile (it
survives plugin upgrades) with ``--no-deps``, so nothing else - above all not QGIS's numpy or GDAL - is touched.
The folder is put on ``sys.path`` when the plugin loads, so the core's lazy ``import onnxruntime`` finds it. pip
fills a staging folder beside it, which replaces the folder only once pip has succeeded: a failed or cancelled
install leaves the previous one as it was.
"""
import importlib
import importlib.metadata
import os
import shutil
import sys
import tempfile
from typing import List, Optional

# Keep in step with requirements.txt (a test checks it).
ONNXRUNTIME_REQUIREMENT = "onnxruntime==1.32.0"
PACKAGE, PINNED_VERSION = ONNXRUNTIME_REQUIREMENT.split("==")


def private_site_dir(profile_dir: str) -> str:
    """The plugin-private package folder inside a QGIS profile folder, per Python version (wheels are)."""
    version = f"python{sys.version_info.major}{sys.version_info.minor}"
    return os.path.join(profile_dir, "fers_qgis", f"site-packages-{version}")


def add_to_path(site_dir: str) -> None:
    """Make packages in ``site_dir`` importable now and once installed there (last, so QGIS's own packages win).

    The folder may not exist yet when the plugin loads. Python's import system then remembers it as holding
    nothing (a ``None`` finder in ``sys.path_importer_cache``) and would not look again before a restart, so that
    entry and the finders' directory caches are dropped every time.
    """
    if site_dir not in sys.path:
        sys.path.append(site_dir)
    sys.path_importer_cache.pop(site_dir, None)
    importlib.invalidate_caches()


def installed_version(site_dir: str) -> Optional[str]:
    """The onnxruntime version pip installed into ``site_dir``, or None when there is none."""
    if not os.path.isdir(os.path.join(site_dir, PACKAGE)):
        return None
    for distribution in importlib.metadata.distributions(path=[site_dir]):
        if (distribution.metadata["Name"] or "").lower() == PACKAGE:
            return distribution.version
    return None


def new_staging_dir(site_dir: str) -> str:
    """An empty folder beside ``site_dir`` for pip to install into (same file system: the swap is a rename)."""
    parent = os.path.dirname(site_dir)
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix=os.path.basename(site_dir) + ".installing-", dir=parent)


def discard(staging_dir: str) -> None:
    """Remove a staging folder that will not be used (pip failed or was cancelled)."""
    shutil.rmtree(staging_dir, ignore_errors=True)


def swap_in(staging_dir: str, site_dir: str) -> None:
    """Replace ``site_dir`` by the complete install in ``staging_dir``; if that fails the previous one stays."""
    previous = None
    if os.path.exists(site_dir):
        previous = site_dir + ".previous"
        shutil.rmtree(previous, ignore_errors=True)  # left by an earlier swap that could not finish
        os.rename(site_dir, previous)
    try:
        os.rename(staging_dir, site_dir)
    except OSError:
        if previous is not None:
            os.rename(previous, site_dir)
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    add_to_path(site_dir)


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


def pip_install_arguments(target_dir: str) -> List[str]:
    """Arguments after the interpreter: pip installs the pinned onnxruntime alone into ``target_dir``."""
    return ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--upgrade", "--no-deps",
            "--target", target_dir, ONNXRUNTIME_REQUIREMENT]
