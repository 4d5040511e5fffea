"""What *Plugins > FERS > Install FERS dependencies* does, without its dialog, for a headless QGIS.

    python3 -m scripts.install_onnxruntime PROFILE_FOLDER   (the QGIS profile folder, e.g. .../profiles/default)

Run with the Python behind QGIS: pip installs the pinned onnxruntime alone into the profile's plugin-private folder
with the plugin's own arguments (``fers_qgis.dependencies``), through the same staging folder and swap.
"""
import subprocess  # nosec B404 # pip with the plugin's fixed argument list
import sys

from fers_qgis import dependencies


def install(profile_dir: str) -> str:
    """Install onnxruntime for the profile unless its pinned version is there; the folder it is in."""
    site_dir = dependencies.private_site_dir(profile_dir)
    if dependencies.installed_version(site_dir) == dependencies.PINNED_VERSION:
        return site_dir
    python = dependencies.python_executable()
    if python is None:
        raise SystemExit("No Python interpreter was found next to QGIS")
    staging_dir = dependencies.new_staging_dir(site_dir)
    completed = subprocess.run([python, *dependencies.pip_install_arguments(staging_dir)])  # nosec B603
    if completed.returncode != 0:
        dependencies.discard(staging_dir)
        raise SystemExit(f"pip could not install {dependencies.ONNXRUNTIME_REQUIREMENT} (exit status "
                         f"{completed.returncode})")
    dependencies.swap_in(staging_dir, site_dir)
    return site_dir


if __name__ == "__main__":
    print(f"{dependencies.ONNXRUNTIME_REQUIREMENT} is in {install(sys.argv[1])}")
