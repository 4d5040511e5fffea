"""``make package``: the plugin as a zip that QGIS's "Install from ZIP" accepts.

    python -m scripts.package [--out dist]   ->   dist/fers_qgis-<version>.zip

The zip holds one folder, ``fers_qgis/``: the plugin's code, ``metadata.txt``, ``LICENSE`` and the icon (real
files: the symbolic links of the development tree are resolved), and the shipped models under ``fers_qgis/models/``
with their model cards. Tests, training code, caches and anything else stay out.

Before the zip is kept, its contents go through what plugins.qgis.org runs on an upload: its validator's rules
(required metadata, LICENSE, size, no compiled or hidden files) and its blocking scans, Bandit (medium and high
severity) and detect-secrets. flake8 runs too: its errors (syntax, undefined names) fail the package, its style
notes are printed, as the site shows them.
"""
import argparse
import configparser
import json
import os
import subprocess  # nosec B404 # runs the pinned checkers below with fixed argument lists, never a shell
import sys
import tempfile
import zipfile
from typing import Iterator, List, Tuple

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = "fers_qgis"
MODEL_SOURCE = os.path.join(REPOSITORY, "resources", "models")
MODEL_SUFFIXES = (".onnx", ".md")
SIZE_LIMIT = 25_000_000  # bytes: plugins.qgis.org's PLUGIN_MAX_UPLOAD_SIZE
# The fields plugins.qgis.org's validator requires, and the ones this plugin must declare besides.
REQUIRED_METADATA = ("name", "description", "version", "qgisMinimumVersion", "author", "email", "about", "tracker",
                     "repository", "qgisMaximumVersion", "homepage", "icon", "hasProcessingProvider")
# Files the site warns about: compiled code, hidden files, executables and scripts.
FORBIDDEN_FOLDERS = ("__pycache__", ".git", "__MACOSX")
SUSPICIOUS_SUFFIXES = (".pyc", ".pyo", ".exe", ".dll", ".so", ".dylib", ".bat", ".sh", ".ps1", ".cmd")
MAX_LINE_LENGTH = 120  # the site's flake8 setting, and this project's
FLAKE8_ERRORS = "E9,F63,F7,F82"  # syntax errors, invalid comparisons and undefined names: bugs, not style


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


def _run_checker(arguments: List[str], folder: str) -> str:
    """stdout of ``python -m <checker> ...`` run in ``folder``."""
    command = [sys.executable, "-m", *arguments]
    completed = subprocess.run(command, cwd=folder, capture_output=True, text=True)  # nosec B603 # fixed list, no shell
    if completed.returncode not in (0, 1):  # 1: findings
        raise SystemExit(f"{arguments[0]} could not run ({completed.stderr.strip()[-500:]}); run make setup.")
    return completed.stdout


def bandit_findings(folder: str) -> List[str]:
    """Bandit's medium- and high-severity findings in ``folder``: plugins.qgis.org blocks a version for any."""
    report = json.loads(_run_checker(["bandit", "-r", ".", "-f", "json", "-q", "-ll"], folder))
    return [f"{issue['filename']}:{issue['line_number']}: Bandit {issue['test_id']} ({issue['issue_severity']} "
            f"severity): {issue['issue_text']}" for issue in report["results"]]


def secrets_findings(folder: str) -> List[str]:
    """What detect-secrets takes for a password, key or token (the site excludes metadata.txt, as here)."""
    report = json.loads(_run_checker(["detect_secrets", "scan", "--all-files", "--exclude-files", r"metadata\.txt",
                                      "."], folder))
    return [f"{path}:{secret['line_number']}: detect-secrets: {secret['type']}"
            for path, secrets in report["results"].items() for secret in secrets]


def flake8_findings(folder: str, select: str = "") -> List[str]:
    """flake8's findings at the site's line length, only the ``select`` codes when given."""
    arguments = ["flake8", f"--max-line-length={MAX_LINE_LENGTH}", *([f"--select={select}"] if select else []), "."]
    return _run_checker(arguments, folder).splitlines()


def archive_findings(archive: str) -> List[str]:
    """What plugins.qgis.org's validator refuses or warns about in the zip itself."""
    findings = []
    with zipfile.ZipFile(archive) as package:
        names = package.namelist()
        metadata = configparser.ConfigParser()
        metadata.optionxform = str  # keys are case-sensitive on the site
        metadata.read_string(package.read(f"{PLUGIN}/metadata.txt").decode("utf-8"))
        modes = {info.filename: info.external_attr >> 16 for info in package.infolist()}
    general = metadata["general"]
    findings += [f"metadata.txt: the required field {key!r} is missing or empty"
                 for key in REQUIRED_METADATA if not general.get(key, "").strip()]
    if f"{PLUGIN}/LICENSE" not in names:
        findings.append("LICENSE: the site requires a LICENSE file in the plugin folder")
    for name in names:
        parts = name.split("/")
        if any(part in FORBIDDEN_FOLDERS or part.startswith(".") for part in parts) or \
                name.lower().endswith(SUSPICIOUS_SUFFIXES):
            findings.append(f"{name}: compiled, hidden or executable files are refused or flagged by the site")
        elif modes[name] & 0o111:
            findings.append(f"{name}: has execute permission")
    if os.path.getsize(archive) >= SIZE_LIMIT:
        findings.append(f"the package is {os.path.getsize(archive):,} bytes; the site's limit is {SIZE_LIMIT:,}")
    return findings


def repository_findings(archive: str) -> Tuple[List[str], List[str]]:
    """(blocking, advisory) findings for the zip, from the checks plugins.qgis.org runs on an upload."""
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(archive) as package:
            package.extractall(folder)
        blocking = [*archive_findings(archive), *bandit_findings(folder), *secrets_findings(folder),
                    *flake8_findings(folder, select=FLAKE8_ERRORS)]
        advisory = flake8_findings(folder)
    return blocking, [finding for finding in advisory if finding not in blocking]


def build(out_folder: str) -> str:
    """Write the zip (replacing an older one of the same version) and return its path; raise SystemExit, leaving
    no zip, when plugins.qgis.org would block it."""
    os.makedirs(out_folder, exist_ok=True)
    path = os.path.join(out_folder, f"{PLUGIN}-{plugin_version()}.zip")
    partial = path + ".partial"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, target in plugin_files():
            archive.write(source, target)
    blocking, advisory = repository_findings(partial)
    for finding in advisory:
        print(f"note: {finding}")
    if blocking:
        os.remove(partial)
        raise SystemExit("plugins.qgis.org would block this package:\n" + "\n".join(blocking))
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
