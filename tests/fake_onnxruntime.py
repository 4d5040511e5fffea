"""A stand-in onnxruntime for the installer's tests: what pip prints and writes, without a 15 MB download.

Used by the in-QGIS tests and by the PyQt6 test, which runs in an environment without pytest or QGIS: this module
imports nothing but the standard library.
"""
import os
import stat
import zipfile

PIP_LINES = ("Collecting onnxruntime=={version}",
             "  Downloading onnxruntime-{version}-cp3-none-any.whl (17.2 MB)")
WHEEL = "Wheel-Version: 1.0\nGenerator: fers-qgis tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _package_files(version: str) -> dict:
    """Path -> text of what pip leaves in a ``--target`` folder for onnxruntime ``version``."""
    dist_info = f"onnxruntime-{version}.dist-info"
    return {
        "onnxruntime/__init__.py": f'"""Stand-in onnxruntime for tests."""\n__version__ = "{version}"\n',
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: onnxruntime\nVersion: {version}\n",
        f"{dist_info}/WHEEL": WHEEL,
    }


def write_installed(site_dir: str, version: str) -> None:
    """Lay out an installed onnxruntime ``version`` in ``site_dir`` as pip would."""
    for name, text in _package_files(version).items():
        path = os.path.join(site_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)


def folder_contents(folder: str) -> dict:
    """Relative path -> text of every file below ``folder`` (to see that an install was left untouched)."""
    contents = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, errors="replace") as handle:
                contents[os.path.relpath(path, folder)] = handle.read()
    return contents


def write_wheel(folder: str, version: str) -> str:
    """A wheel named as onnxruntime's, for the real pip installing from a local folder (no package index)."""
    files = _package_files(version)
    record = f"onnxruntime-{version}.dist-info/RECORD"
    path = os.path.join(folder, f"onnxruntime-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr(record, "".join(f"{name},,\n" for name in [*files, record]))
    return path


def write_fake_python(path: str, outcome: str, version: str) -> str:
    """An executable standing for ``python -m pip install ... --target DIR``: it prints pip's first lines and writes
    part of the package into DIR, then ``outcome``: "hang" (a slow download), "fail" (exit 1) or "succeed" (the
    complete install of ``version``)."""
    lines = [line.format(version=version) for line in PIP_LINES]
    script = ['#!/bin/sh', 'while [ "$#" -gt 0 ] && [ "$1" != "--target" ]; do shift; done', 'target="$2"',
              'mkdir -p "$target/onnxruntime"', 'echo "partial = True" > "$target/onnxruntime/__init__.py"',
              *(f"echo '{line}'" for line in lines)]
    if outcome == "hang":
        script.append("exec sleep 60")
    elif outcome == "fail":
        script += ["echo 'ERROR: HTTP error 503 while getting onnxruntime'", "exit 1"]
    else:
        script.append("echo 'Installing collected packages: onnxruntime'")
        for name, text in _package_files(version).items():
            script += [f'mkdir -p "$target/{os.path.dirname(name)}"', f"cat > \"$target/{name}\" <<'END'", text + "END"]
        script.append(f"echo 'Successfully installed onnxruntime-{version}'")
    with open(path, "w") as handle:
        handle.write("\n".join(script) + "\n")
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path
