"""What the plugin says about itself (icons, version, help links), read from the files QGIS reads.

`icon.svg`, `icons/*.svg` and `metadata.txt` are symlinks in the source tree and copies in the packaged plugin;
all resolve from the package folder.
"""
import configparser
import os

from qgis.PyQt.QtGui import QIcon

PLUGIN_DIR = os.path.dirname(__file__)
PLUGIN_ICON_PATH = os.path.join(PLUGIN_DIR, "icon.svg")


def plugin_icon() -> QIcon:
    """The FERS icon, for the provider and the layer actions."""
    return QIcon(PLUGIN_ICON_PATH)


def algorithm_icon_path(name: str) -> str:
    """The path of an algorithm's icon in the plugin's icons folder."""
    return os.path.join(PLUGIN_DIR, "icons", name)


def algorithm_icon(name: str) -> QIcon:
    return QIcon(algorithm_icon_path(name))


def _metadata(key: str) -> str:
    parser = configparser.ConfigParser()
    parser.read(os.path.join(PLUGIN_DIR, "metadata.txt"), encoding="utf-8")
    return parser.get("general", key, fallback="")


def plugin_version() -> str:
    """The version in metadata.txt, or '' if the file cannot be read."""
    return _metadata("version")


def help_url(section: str) -> str:
    """The README section (a GitHub heading anchor) that documents an algorithm."""
    return f"{_metadata('homepage')}#{section}"
