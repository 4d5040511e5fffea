"""``make test-qgis``: the plugin tested in the QGIS versions users run, each in a Debian 13 root of its own.

    python -m scripts.qgis_versions [--zip dist/fers_qgis-<version>.zip]   (as root)
    python -m scripts.qgis_versions --skip-reason   prints why it cannot run here (exit 0), or nothing (exit 1)

Each root is built once with debootstrap and cached under ``~/.cache/fers-qgis/roots``: QGIS 3.40 LTR from Debian
13 ("trixie"), QGIS 3.44 from trixie-backports, both with Python 3.13 and numpy 2. Every run then installs the
package zip into a clean QGIS profile (as *Install from ZIP* does), installs onnxruntime with the plugin's own
installer code into that profile's private folder (``scripts/install_onnxruntime.py``), and runs Debian's pytest
with QGIS's Python on the core and Processing tests. Those import the installed plugin, not the checkout, and
``tests/processing/test_installed_plugin.py`` runs it through ``qgis_process`` in that profile.
"""
import argparse
import json
import os
import shutil
import subprocess  # nosec B404 # debootstrap, apt and chroot with fixed argument lists
import sys
import time
import xml.etree.ElementTree as ElementTree  # nosec B405 # our own pytest's report
import zipfile
from typing import Dict, List, Optional, Sequence

from scripts import package

REPOSITORY = package.REPOSITORY
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "fers-qgis")
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "trixie"
# QGIS version -> the suite its packages come from (apt's target release).
VERSIONS = {"3.40": SUITE, "3.44": f"{SUITE}-backports"}
PACKAGES = ("qgis", "python3-qgis", "qgis-providers", "python3-gdal", "python3-pip", "python3-pytest",
            "python3-hypothesis", "python3-spectral", "python3-netcdf4", "python3-h5py", "ca-certificates")
# Test tools Debian does not package: pip installs them into the root, alone (pinned in requirements.txt).
PIP_TEST_PACKAGES = ("pytest-qgis",)
TEST_PACKAGES = "/opt/fers-test-packages"
# Inside the root: the copied tests, and the QGIS profile (QGIS_CUSTOM_CONFIG_PATH) the zip is installed into.
WORK = "/fers/work"
PROFILE = "/fers/profile"
PLUGINS = f"{PROFILE}/profiles/default/python/plugins"
TEST_FOLDERS = ("tests/core", "tests/processing")
# pip inside a root needs the host's pip configuration and CA bundle (an index mirror, a proxy's CA): they are
# copied to the same paths in the root and the PIP_* and CA variables are passed through. Local folders that
# configuration names (find-links, file:// indexes) are not in the root; pip says so and uses the rest.
PIP_CONFIG_FILES = ("/etc/pip.conf", "/etc/xdg/pip", "~/.config/pip/pip.conf", "~/.pip/pip.conf")
CA_VARIABLES = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def skip_reason() -> Optional[str]:
    """Why the roots cannot be built on this machine, or None."""
    if not sys.platform.startswith("linux"):
        return "Debian roots need Linux"
    if os.geteuid() != 0:
        return "building and entering the Debian 13 roots needs root (debootstrap, chroot); run it as root"
    for tool in ("debootstrap", "unshare", "chroot"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install debootstrap util-linux coreutils)"
    return None


def requirement(name: str) -> str:
    """``name==version`` as pinned in requirements.txt."""
    with open(os.path.join(REPOSITORY, "requirements.txt"), encoding="utf-8") as pins:
        for line in pins:
            if line.split("==")[0].strip().lower() == name:
                return line.strip()
    raise SystemExit(f"{name} is not pinned in requirements.txt")


def in_root(root: str, command: str, environment: Dict[str, str] = None, binds: Sequence[str] = (),
            check: bool = True) -> subprocess.CompletedProcess:
    """Run a shell command in ``root`` with /proc, /sys and /dev mounted (``binds``: host folders mounted at the
    same path), in a private mount namespace: nothing stays mounted when it ends, however it ends."""
    shutil.copyfile("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
    mounts = [f"mount -t proc proc {root}/proc", f"mount -t sysfs sys {root}/sys", f"mount --rbind /dev {root}/dev"]
    for folder in binds:
        os.makedirs(root + folder, exist_ok=True)
        mounts.append(f"mount --bind {folder} {root}{folder}")
    variables = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
                 "DEBIAN_FRONTEND": "noninteractive", **(environment or {})}
    script = " && ".join(mounts + ['exec chroot "$0" env -i "$@"'])
    arguments = [f"{key}={value}" for key, value in variables.items()] + ["/bin/sh", "-c", command]
    completed = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script,
                                root, *arguments])  # nosec B603 # fixed list
    if check and completed.returncode != 0:
        raise SystemExit(f"In {root}: `{command}` failed (exit status {completed.returncode})")
    return completed


def stamp(root: str) -> str:
    return os.path.join(root, "etc", "fers-qgis-root.json")


def built(root: str, recipe: dict) -> bool:
    """Whether ``root`` is complete and was built from ``recipe`` (a changed package list rebuilds it)."""
    try:
        with open(stamp(root), encoding="utf-8") as written:
            return json.load(written) == recipe
    except (OSError, ValueError):
        return False


def finish(partial: str, root: str, recipe: dict) -> None:
    with open(stamp(partial), "w", encoding="utf-8") as written:
        json.dump(recipe, written)
    shutil.rmtree(root, ignore_errors=True)
    os.rename(partial, root)


def base_root() -> str:
    """Debian 13 minbase with trixie and trixie-backports in its sources (backports only on request)."""
    root = os.path.join(CACHE, "roots", SUITE)
    recipe = {"suite": SUITE, "mirror": MIRROR}
    if built(root, recipe):
        return root
    partial = root + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    print(f"Building the Debian {SUITE} root (debootstrap, about a minute) ...", flush=True)
    subprocess.run(["debootstrap", "--variant=minbase", SUITE, partial, MIRROR], check=True,
                   stdout=subprocess.DEVNULL)  # nosec B603 B607
    with open(os.path.join(partial, "etc", "apt", "sources.list"), "w", encoding="utf-8") as sources:
        sources.write(f"deb {MIRROR} {SUITE} main\ndeb {MIRROR} {SUITE}-backports main\n")
    # A mirror may serve a frozen snapshot whose Release files have expired (as the host's apt allows).
    with open(os.path.join(partial, "etc", "apt", "apt.conf.d", "99fers-qgis"), "w", encoding="utf-8") as conf:
        conf.write('Acquire::Check-Valid-Until "false";\nAcquire::Languages "none";\n'
                   'APT::Sandbox::User "root";\n')  # it downloads into the roots' shared folder on the host
    finish(partial, root, recipe)
    return root


def qgis_root(version: str) -> str:
    """The cached root holding QGIS ``version`` and the test tools, built from the base root when missing."""
    root = os.path.join(CACHE, "roots", f"{SUITE}-qgis{version}")
    pins = [requirement(name) for name in PIP_TEST_PACKAGES]
    recipe = {"suite": VERSIONS[version], "packages": list(PACKAGES), "pip": pins}
    if built(root, recipe):
        return root
    base = base_root()
    partial = root + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    print(f"Installing QGIS {version} from {VERSIONS[version]} into {root} (a few minutes) ...", flush=True)
    subprocess.run(["cp", "-a", "--reflink=auto", base, partial], check=True)  # nosec B603 B607
    archives = os.path.join(CACHE, "apt-archives")  # shared by the roots: each .deb is downloaded once
    os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
    in_root(partial, f"apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "
                     f"-t {VERSIONS[version]} -o Dir::Cache::Archives={archives}/ {' '.join(PACKAGES)} "
                     ">/var/log/fers-apt.log || { tail -20 /var/log/fers-apt.log; exit 1; }", binds=[archives])
    copy_pip_configuration(partial)
    in_root(partial, f"python3 -m pip install -q --no-deps --target {TEST_PACKAGES} {' '.join(pins)}",
            environment=pip_environment())
    finish(partial, root, recipe)
    return root


def copy_pip_configuration(root: str) -> None:
    """The host's pip configuration files and CA bundles, at the same paths in ``root``."""
    paths = [os.path.expanduser(path) for path in PIP_CONFIG_FILES] + [os.environ.get("PIP_CONFIG_FILE", "")]
    paths += [os.environ.get(variable, "") for variable in CA_VARIABLES] + [CA_BUNDLE]
    for path in filter(os.path.exists, paths):
        target = root + os.path.abspath(path)
        if os.path.isdir(path):
            shutil.copytree(path, target, dirs_exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(path, target)


def pip_environment() -> Dict[str, str]:
    """The host's pip and CA variables, for pip inside a root."""
    return {key: value for key, value in os.environ.items() if key.startswith("PIP_") or key in CA_VARIABLES}


def install_plugin(root: str, zip_path: str) -> None:
    """A clean profile with the zip's plugin in its plugins folder, and a fresh copy of the tests."""
    shutil.rmtree(os.path.join(root, "fers"), ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("tests", "scripts"):
        shutil.copytree(os.path.join(REPOSITORY, folder), root + f"{WORK}/{folder}", ignore=ignore)
    for name in ("pytest.ini", "requirements.txt", "README.md"):  # the tests read the last two
        shutil.copyfile(os.path.join(REPOSITORY, name), root + f"{WORK}/{name}")
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(root + PLUGINS)


def summary_counts(root: str, returncode: int) -> Dict[str, int]:
    """Passed, failed and skipped counts from pytest's JUnit report (a run that wrote none failed)."""
    try:
        suite = ElementTree.parse(root + "/fers/report.xml").getroot().find("testsuite")  # nosec B314
    except (OSError, ElementTree.ParseError):
        return {"passed": 0, "failed": 1, "skipped": 0}
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    failed = counts["failures"] + counts["errors"] or int(returncode != 0)
    return {"passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "failed": failed, "skipped": counts["skipped"]}


def run_version(version: str, zip_path: str) -> str:
    """Build or reuse the root of QGIS ``version``, install the zip and onnxruntime, run the tests; the result
    line (``QGIS 3.40.6 (Python 3.13, numpy 2.2.4): N passed, 0 failed, S skipped``)."""
    root = qgis_root(version)
    install_plugin(root, zip_path)
    copy_pip_configuration(root)
    in_root(root, f"cd {WORK} && PYTHONPATH={PLUGINS} python3 -m scripts.install_onnxruntime "
                  f"{PROFILE}/profiles/default", environment=pip_environment())
    in_root(root, 'python3 -c "import sys, numpy; from qgis.core import Qgis; '
                  "print(Qgis.QGIS_VERSION.split('-')[0], '%d.%d' % sys.version_info[:2], numpy.__version__)\" "
                  "> /fers/versions.txt")
    with open(root + "/fers/versions.txt", encoding="utf-8") as written:
        qgis, python, numpy = written.read().split()
    print(f"QGIS {qgis}: pytest on {' '.join(TEST_FOLDERS)} with the plugin from {os.path.basename(zip_path)}",
          flush=True)
    environment = {"PYTHONPATH": f"{PLUGINS}:{TEST_PACKAGES}", "FERS_QGIS_PROFILE": PROFILE,
                   "QT_QPA_PLATFORM": "offscreen"}
    # numpy 2's deprecations in the plugin's own code fail the run: they are the next release's removals.
    completed = in_root(root, f"cd {WORK} && python3 -m pytest -q -p no:cacheprovider -r fE "
                              f"-o 'filterwarnings=error::DeprecationWarning:fers_qgis' "
                              f"--junitxml=/fers/report.xml {' '.join(TEST_FOLDERS)}",
                        environment=environment, check=False)
    counts = summary_counts(root, completed.returncode)
    return (f"QGIS {qgis} (Python {python}, numpy {numpy}): {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", help="the plugin package (default: the one `make package` writes)")
    parser.add_argument("--version", action="append", choices=sorted(VERSIONS),
                        help="only this QGIS version (repeatable; default: all)")
    parser.add_argument("--skip-reason", action="store_true",
                        help="print why the roots cannot be built here and exit 0; exit 1 when they can")
    args = parser.parse_args(argv)
    reason = skip_reason()
    if args.skip_reason:
        print(reason or "", end="\n" if reason else "")
        return 0 if reason else 1
    if reason:
        raise SystemExit(f"make test-qgis cannot run here: {reason}")
    zip_path = args.zip or os.path.join(REPOSITORY, "dist", f"{package.PLUGIN}-{package.plugin_version()}.zip")
    if not os.path.isfile(zip_path):
        raise SystemExit(f"No plugin package at {zip_path}: run make package")
    started = time.monotonic()
    lines = [run_version(version, zip_path) for version in (args.version or VERSIONS)]
    print(f"\nmake test-qgis ({(time.monotonic() - started) / 60:.1f} min):", *lines, sep="\n")
    return 0 if all(", 0 failed," in line for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
