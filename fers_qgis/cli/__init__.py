"""The command-line and distributed layer: the ``fers`` command (``main``), archive batches of many rasters
(``batch``) and one large raster split over Dask workers (``split``). Like the QGIS adapters (``processing``,
``gui``), it is a thin layer over the engine in ``fers_qgis.core``, and it imports nothing from QGIS."""
