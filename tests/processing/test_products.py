"""Sensor products through Processing: the import algorithm, and detection algorithms given a NetCDF/HDF5 product
directly (imported on the fly, or refused with the command to run; never scored with image lines as bands)."""
import glob
import os

import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsProcessingUtils, QgsRasterLayer

from tests.helpers import read_raster, same_crs
from tests.product_files import (EMIT_GEOTRANSFORM, gdal_reads_lines_as_bands, write_emit_l2a, write_emit_l2a_mask,
                                 write_netcdf_cube, write_prisma_l2d)

pytest.importorskip("netCDF4", reason="building the NetCDF test products needs netCDF4 (Debian python3-netcdf4)")
pytest.importorskip("h5py", reason="building the HDF5 test products needs h5py (Debian python3-h5py)")

IMPORT = "fers:importhyperspectralproduct"
RX = "fers:detectanomaliesrx"
FERS = "fers:detectanomaliesfers"
ENHANCE = "fers:enhancefeatures"

pytestmark = pytest.mark.usefixtures("fers_plugin")


@pytest.fixture(scope="module")
def emit(tmp_path_factory):
    return write_emit_l2a(tmp_path_factory.mktemp("emit"))


def leftover_imports():
    return glob.glob(os.path.join(QgsProcessingUtils.tempFolder(), "fers_import_*"))


def test_import_algorithm_writes_the_orthorectified_emit_cube(emit, output_dir):
    output = str(output_dir / "emit.tif")
    result = processing.run(IMPORT, {"INPUT": emit.path, "OUTPUT": output})
    assert result["OUTPUT"] == output
    written = read_raster(output)
    np.testing.assert_array_equal(written.cube_bhw, emit.expected_bhw())
    assert written.geotransform == pytest.approx(EMIT_GEOTRANSFORM)
    assert same_crs(written.projection_wkt, 4326)


def test_import_algorithm_writes_an_emit_swath_in_sensor_geometry_that_qgis_places(emit, output_dir):
    output = str(output_dir / "emit_sensor.tif")
    processing.run(IMPORT, {"INPUT": emit.path, "GEOMETRY": 1, "OUTPUT": output})
    np.testing.assert_array_equal(read_raster(output).cube_bhw, emit.swath_dcb.transpose(2, 0, 1))
    layer = QgsRasterLayer(output, "swath")  # QGIS warps a GCP raster onto the map when it loads it
    assert layer.isValid() and layer.crs().authid() == "EPSG:4326"
    west, _, _, north, _, _ = EMIT_GEOTRANSFORM
    extent = layer.extent()
    assert west - 0.001 < extent.xMinimum() < extent.xMaximum() < west + 0.02
    assert north - 0.02 < extent.yMinimum() < extent.yMaximum() < north + 0.001


def test_the_emit_mask_file_is_imported_as_a_mask_and_refused_as_a_scene(emit, tmp_path, output_dir):
    mask_file, usable = write_emit_l2a_mask(tmp_path, emit)
    mask = processing.run(IMPORT, {"INPUT": mask_file, "GEOMETRY": 1, "OUTPUT": str(output_dir / "mask.tif")})
    np.testing.assert_array_equal(read_raster(mask["OUTPUT"]).cube_bhw[0], usable.astype(np.uint8))
    with pytest.raises(QgsProcessingException, match="EMIT's mask file, not a scene"):
        processing.run(RX, {"INPUT": mask_file, "OUTPUT": str(output_dir / "rx.tif")})
    assert os.listdir(output_dir) == ["mask.tif"]


def test_import_algorithm_refuses_a_non_product_and_writes_nothing(tmp_path, output_dir):
    not_a_product = tmp_path / "notes.xml"
    not_a_product.write_text("<notes/>")
    with pytest.raises(QgsProcessingException, match="not a product this importer knows"):
        processing.run(IMPORT, {"INPUT": str(not_a_product), "OUTPUT": str(output_dir / "out.tif")})
    assert os.listdir(output_dir) == []


@pytest.mark.parametrize("given", ["file", "subdataset"])
def test_rx_on_an_emit_file_imports_it_on_the_fly(emit, output_dir, given):
    """Before: "not an image format GDAL knows" for the file, and "not found" for its subdataset name. The swath is
    scored as recorded (sensor geometry, placed by GCPs), which scores like the scene (tests/test_swath_acceptance)."""
    imported = str(output_dir / "imported.tif")
    processing.run(IMPORT, {"INPUT": emit.path, "GEOMETRY": 1, "OUTPUT": imported})
    reference = read_raster(processing.run(RX, {"INPUT": imported, "OUTPUT": str(output_dir / "ref.tif")})["OUTPUT"])

    value = emit.path if given == "file" else f'NETCDF:"{emit.path}":reflectance'
    output = processing.run(RX, {"INPUT": value, "OUTPUT": str(output_dir / "rx.tif")})["OUTPUT"]
    scores = read_raster(output)
    assert scores.cube_bhw.shape == (1,) + emit.swath_dcb.shape[:2]  # the swath as recorded
    np.testing.assert_array_equal(scores.cube_bhw, reference.cube_bhw)
    assert gdal.Open(output).GetGCPCount() == gdal.Open(imported).GetGCPCount() > 0
    assert leftover_imports() == []


def test_the_progress_bar_runs_once_over_the_import_and_the_detection(emit, output_dir):
    """Before: the bar went to 100% for the import, then started again from 0 for the detection."""
    feedback = QgsProcessingFeedback()
    seen = []
    feedback.progressChanged.connect(seen.append)
    processing.run(RX, {"INPUT": emit.path, "OUTPUT": str(output_dir / "rx.tif")}, feedback=feedback)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(100)
    assert max(value for value in seen if value <= 50) == pytest.approx(50)  # the import's share


def test_rx_on_a_layer_loaded_from_an_emit_subdataset_imports_the_product(emit, output_dir):
    """A layer added from the NetCDF (as the right-click menu passes it) has the downtrack lines as bands in GDAL
    3.6; either way the product is imported and scored in sensor geometry."""
    layer = QgsRasterLayer(f'NETCDF:"{emit.path}":reflectance', "emit reflectance", "gdal")
    lines_as_bands = gdal_reads_lines_as_bands(output_dir.parent)
    assert layer.isValid() and layer.bandCount() == emit.swath_dcb.shape[0 if lines_as_bands else 2]
    scores = read_raster(processing.run(RX, {"INPUT": layer, "OUTPUT": str(output_dir / "rx.tif")})["OUTPUT"])
    assert scores.cube_bhw.shape == (1,) + emit.swath_dcb.shape[:2]
    assert leftover_imports() == []


def test_rx_on_a_prisma_file_imports_it_on_the_fly(tmp_path, output_dir):
    product = write_prisma_l2d(tmp_path)
    scores = read_raster(processing.run(RX, {"INPUT": product.path, "OUTPUT": str(output_dir / "rx.tif")})["OUTPUT"])
    assert scores.cube_bhw.shape == (1,) + product.vnir_rbc[:, 0, :].shape
    assert same_crs(scores.projection_wkt, 32633)
    assert leftover_imports() == []


def test_a_lone_reflectance_variable_is_scored_with_its_real_bands(tmp_path, output_dir):
    """Before: GDAL read reflectance(downtrack, crosstrack, bands) with the 30 downtrack lines as bands."""
    cube_dcb = np.random.default_rng(2).normal(0.3, 0.02, (30, 12, 6)).astype(np.float32)
    cube_dcb[17, 4] += 0.5  # one anomalous pixel
    path = write_netcdf_cube(tmp_path / "reflectance_only.nc", cube_dcb, ("downtrack", "crosstrack", "bands"))
    scores = read_raster(processing.run(RX, {"INPUT": path, "OUTPUT": str(output_dir / "rx.tif")})["OUTPUT"])
    assert scores.cube_bhw.shape == (1, 30, 12)
    assert np.unravel_index(scores.cube_bhw[0].argmax(), (30, 12)) == (17, 4)


def test_a_gdal_export_with_lines_as_bands_is_refused_with_the_import_command(tmp_path, output_dir):
    if not gdal_reads_lines_as_bands(tmp_path):
        pytest.skip("this GDAL reads the NetCDF band axis right: its export holds the real bands")
    cube_dcb = np.random.default_rng(3).uniform(0, 1, (30, 12, 6)).astype(np.float32)
    path = write_netcdf_cube(tmp_path / "reflectance_only.nc", cube_dcb, ("downtrack", "crosstrack", "bands"))
    exported = str(tmp_path / "exported.tif")
    gdal.Translate(exported, path)
    with pytest.raises(QgsProcessingException, match=r"dimension 'downtrack', a spatial axis.*"
                                                     r"qgis_process run fers:importhyperspectralproduct"):
        processing.run(RX, {"INPUT": exported, "OUTPUT": str(output_dir / "rx.tif")})
    assert os.listdir(output_dir) == []


def test_a_netcdf_cube_with_an_unknown_band_axis_is_refused_before_the_run(tmp_path, output_dir):
    path = write_netcdf_cube(tmp_path / "unnamed.nc", np.ones((30, 12, 6), np.float32), ("a", "b", "c"))
    with pytest.raises(QgsProcessingException, match="which axis holds the bands is unknown"):
        processing.run(RX, {"INPUT": path, "OUTPUT": str(output_dir / "rx.tif")})
    assert os.listdir(output_dir) == [] and leftover_imports() == []


def test_fers_and_enhance_accept_an_emit_file(emit, tmp_path, output_dir):
    pytest.importorskip("torch", reason="the test models are built and exported with torch")
    pytest.importorskip("onnxruntime", reason="FERS models run with onnxruntime")
    from tests.fers_models import ExportedModelSet

    models = ExportedModelSet(tmp_path, bands=6)
    imported = str(output_dir / "imported.tif")
    processing.run(IMPORT, {"INPUT": emit.path, "GEOMETRY": 1, "OUTPUT": imported})
    for algorithm in (FERS, ENHANCE):
        outputs = [str(output_dir / f"{algorithm[5:]}_{name}.tif") for name in ("direct", "imported")]
        for source, output in zip((emit.path, imported), outputs):
            processing.run(algorithm, {"INPUT": source, "MODEL_FILE": models.spectral_path, "OUTPUT": output})
        direct, reference = (read_raster(output) for output in outputs)
        np.testing.assert_array_equal(direct.cube_bhw, reference.cube_bhw)
    assert leftover_imports() == []


def test_a_cancelled_on_the_fly_import_says_so_and_leaves_nothing(emit, output_dir):
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="^Cancelled by the user"):
        processing.run(RX, {"INPUT": emit.path, "OUTPUT": str(output_dir / "rx.tif")}, feedback=feedback)
    assert os.listdir(output_dir) == [] and leftover_imports() == []
