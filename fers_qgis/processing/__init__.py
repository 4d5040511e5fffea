"""QGIS Processing integration: the FERS provider and its algorithms, thin adapters over `fers_qgis.core`."""
