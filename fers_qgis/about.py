"""What the plugin says about itself (icon, version), read from the files QGIS reads.

`icon.svg` and `metadata.txt` are symlinks in the source tree and copies in the packaged plugin; both resolve
from the package folder.
"""
import configparser
import os

from qgis.PyQt.QtGui import QIcon

PLUGIN_DIR = os.path.dirname(__file__)
PLUGIN_ICON_PATH = os.path.join(PLUGIN_DIR, "icon.svg")


def plugin_icon() -> QIcon:
    """The FERS icon, for the provider, its algorithms and the layer actions."""
    return QIcon(PLUGIN_ICON_PATH)


def plugin_version() -> str:
    """The version in metadata.txt, or '' if the file cannot be read."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(PLUGIN_DIR, "metadata.txt"), encoding="utf-8")
    return parser.get("general", "version", fallback="")
