"""``make package``: the plugin as a zip that QGIS's "Install from ZIP" accepts.

    python -m scripts.package [--out dist]   ->   dist/fers_qgis-<version>.zip

The zip holds one folder, ``fers_qgis/``: the plugin's code, ``metadata.txt`` and the icon (real files: the
symbolic links of the development tree are resolved), and the shipped models under ``fers_qgis/models/`` with
their model cards. Tests, training code, caches and anything else stay out.
"""
import argparse
import configparser
import os
import sys
import zipfile
from typing import Iterator, Tuple

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = "fers_qgis"
MODEL_SOURCE = os.path.join(REPOSITORY, "resources", "models")
MODEL_SUFFIXES = (".onnx", ".md")
SIZE_LIMIT = 25 * 2**20  # the QGIS plugin repository's cap


def plugin_version() -> str:
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPOSITORY, "metadata.txt"))
    return parser["general"]["version"]


def plugin_files() -> Iterator[Tuple[str, str]]:
    """(path on disk, path in the zip) of every file that goes into the package."""
    root = os.path.join(REPOSITORY, PLUGIN)
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(folder, name)
            yield os.path.realpath(path), os.path.join(PLUGIN, os.path.relpath(path, root))
    if os.path.isdir(MODEL_SOURCE):
        for name in sorted(os.listdir(MODEL_SOURCE)):
            if name.endswith(MODEL_SUFFIXES):
                yield os.path.join(MODEL_SOURCE, name), os.path.join(PLUGIN, "models", name)


def build(out_folder: str) -> str:
    """Write the zip (replacing an older one of the same version) and return its path."""
    os.makedirs(out_folder, exist_ok=True)
    path = os.path.join(out_folder, f"{PLUGIN}-{plugin_version()}.zip")
    partial = path + ".partial"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, target in plugin_files():
            archive.write(source, target)
    if os.path.getsize(partial) > SIZE_LIMIT:
        os.remove(partial)
        raise SystemExit(f"The package would exceed {SIZE_LIMIT // 2**20} MB, the plugin repository's limit.")
    os.replace(partial, path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPOSITORY, "dist"))
    args = parser.parse_args(argv)
    path = build(args.out)
    print(f"{path} ({os.path.getsize(path) / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
