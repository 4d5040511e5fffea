"""The engine of fers-qgis: raster I/O, detectors and models, with no QGIS imports (numpy, GDAL, onnxruntime)."""
