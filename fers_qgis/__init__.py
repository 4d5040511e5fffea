"""fers-qgis: hyperspectral anomaly detection for QGIS.

The package root must stay importable without QGIS, because `fers_qgis.core` is used on its own (tests, training);
QGIS is imported only when QGIS asks for the plugin.
"""


def classFactory(iface):  # noqa: N802 (name fixed by QGIS)
    """Entry point QGIS calls to create the plugin; `iface` is None under qgis_process."""
    from .plugin import FersPlugin

    return FersPlugin(iface)
