"""Project scripts: the demo and headless qgis_process runs shared by tests, demo and benchmarks."""
