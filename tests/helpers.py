"""Small test rasters written with GDAL, shared by the core and processing tests."""
import glob
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, gdal_array, osr

import fers_qgis

# The plugin under test: the checkout's, or under `make test-qgis` the one installed from the package zip.
PLUGIN_DIR = os.path.dirname(os.path.abspath(fers_qgis.__file__))

# Real labelled scenes (NAME.tif + NAME_gt.tif) beside the project; tests using them skip when it is absent.
EVAL_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "eval"))
EVAL_SCENES = sorted(glob.glob(os.path.join(EVAL_DIR, "*_gt.tif")))
# Their names as test ids: a list, not an ids function, which pytest 8 calls with NOTSET when there are none.
EVAL_NAMES = [os.path.basename(path)[:-len("_gt.tif")] for path in EVAL_SCENES]

# A 30 m grid in UTM zone 33N: georeferencing that a test can recognise in an output.
TEST_GEOTRANSFORM = (500000.0, 30.0, 0.0, 5000000.0, 0.0, -30.0)
TEST_EPSG = 32633


def write_raster(path, cube_bhw: np.ndarray, geotransform: Sequence[float] = TEST_GEOTRANSFORM,
                 epsg: Optional[int] = TEST_EPSG, nodata: Optional[float] = None, dtype=None) -> str:
    """Write a (bands, rows, columns) array, or one (rows, columns) band, as a GeoTIFF; returns the path.

    ``dtype`` is a GDAL type code (``gdal.GDT_Byte``) or a numpy dtype and defaults to the array's; ``nodata``
    is set on every band; ``epsg=None`` writes no CRS.
    """
    cube_bhw = np.asarray(cube_bhw)
    if cube_bhw.ndim == 2:
        cube_bhw = cube_bhw[None]
    if dtype is None:
        dtype = cube_bhw.dtype
    if isinstance(dtype, int):
        gdal_type, dtype = dtype, np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(dtype))
    else:
        dtype = np.dtype(dtype)
        gdal_type = gdal_array.NumericTypeCodeToGDALTypeCode(dtype)
    bands, height, width = cube_bhw.shape
    driver = gdal.GetDriverByName("GTiff")
    # Every band a spectral band: without PHOTOMETRIC, GDAL writes 3 or 4 Byte bands as RGB(A), band 4 an alpha.
    dataset = driver.Create(str(path), width, height, bands, gdal_type, ["PHOTOMETRIC=MINISBLACK"])
    dataset.SetGeoTransform(tuple(geotransform))
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        dataset.SetProjection(srs.ExportToWkt())
    for index in range(bands):
        band = dataset.GetRasterBand(index + 1)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        band.WriteArray(cube_bhw[index].astype(dtype))
    dataset.FlushCache()
    dataset = None
    return str(path)


def set_wavelengths(path, wavelengths_nm: Sequence[float]) -> str:
    """Give a raster's bands ENVI-style centre wavelengths in nanometres, as GDAL's ENVI driver writes them."""
    dataset = gdal.Open(str(path), gdal.GA_Update)
    for index, wavelength in enumerate(wavelengths_nm):
        dataset.GetRasterBand(index + 1).SetMetadata({"wavelength": f"{wavelength:g}", "wavelength_units": "nm"})
    dataset = None
    return str(path)


@dataclass
class RasterContent:
    """What a test needs to check in a written raster."""

    cube_bhw: np.ndarray
    geotransform: Tuple[float, ...]
    projection_wkt: str
    nodata: Tuple[Optional[float], ...]
    data_types: Tuple[str, ...]
    band_names: Tuple[str, ...]


def read_raster(path) -> RasterContent:
    """Read a whole raster with its georeferencing, nodata values, GDAL data type names and band descriptions."""
    dataset = gdal.Open(str(path))
    assert dataset is not None, f"GDAL cannot open {path}"
    bands = [dataset.GetRasterBand(index + 1) for index in range(dataset.RasterCount)]
    content = RasterContent(
        cube_bhw=dataset.ReadAsArray().reshape(dataset.RasterCount, dataset.RasterYSize, dataset.RasterXSize),
        geotransform=tuple(dataset.GetGeoTransform()),
        projection_wkt=dataset.GetProjection(),
        nodata=tuple(band.GetNoDataValue() for band in bands),
        data_types=tuple(gdal.GetDataTypeName(band.DataType) for band in bands),
        band_names=tuple(band.GetDescription() for band in bands),
    )
    dataset = None
    return content


def same_crs(wkt: str, epsg: int) -> bool:
    """True when a WKT string describes the given EPSG code's CRS."""
    reference = osr.SpatialReference()
    reference.ImportFromEPSG(epsg)
    other = osr.SpatialReference()
    other.ImportFromWkt(wkt)
    return bool(other.IsSame(reference))


@dataclass
class AnomalyScene:
    """A synthetic hyperspectral scene with known anomalous pixels."""

    cube_bhw: np.ndarray                               # (bands, rows, columns) float32
    anomalies: dict                                    # name -> (row, column)


def anomaly_scene(height: int = 30, width: int = 40, seed: int = 0, strength: float = 12.0) -> AnomalyScene:
    """8-band Gaussian background with correlated bands and three implanted anomalies.

    Bands 1-4 and 5-8 are correlated within each group and independent between groups, so an anomaly can be
    confined to one group: ``all_bands`` departs in every band, ``bands_1_4`` only in bands 1-4, ``bands_5_8``
    only in bands 5-8. Each departure has Mahalanobis length ``strength`` under the background covariance, far
    above the background's own scores (chi-square with 8 degrees of freedom, rarely above 30 here). The
    anomalies lie at least 7 pixels from the edges and from each other, outside each other's default local
    RX windows (15 x 15).
    """
    rng = np.random.default_rng(seed)
    bands = 8
    mixing = np.zeros((bands, bands))
    for group in (slice(0, 4), slice(4, 8)):
        mixing[group, group] = rng.normal(size=(4, 4)) + 2.0 * np.eye(4)
    latent_pb = rng.normal(size=(height * width, bands))
    offset = np.linspace(100.0, 200.0, bands)
    pixels_pb = latent_pb @ mixing.T + offset

    anomalies = {"all_bands": (8, 9), "bands_1_4": (15, 30), "bands_5_8": (22, 18)}
    directions = {"all_bands": np.ones(bands), "bands_1_4": np.r_[np.ones(4), np.zeros(4)],
                  "bands_5_8": np.r_[np.zeros(4), np.ones(4)]}
    for name, (row, column) in anomalies.items():
        unit = directions[name] / np.linalg.norm(directions[name])
        # A shift of length `strength` in the latent (whitened) space, mapped back through the mixing.
        pixels_pb[row * width + column] += mixing @ (strength * unit)
    cube_bhw = pixels_pb.T.reshape(bands, height, width).astype(np.float32)
    return AnomalyScene(cube_bhw, anomalies)


def written_anomaly_scene(folder) -> AnomalyScene:
    """The default anomaly scene written as ``folder/scene.tif`` (its path in ``.path``)."""
    scene = anomaly_scene()
    scene.path = write_raster(folder / "scene.tif", scene.cube_bhw)
    return scene


def swath_footprint(rows: int, columns: int, fill_fraction: float = 0.5, angle_degrees: float = 30.0) -> np.ndarray:
    """(rows, columns) bool: a flight-line swath crossing the grid at an angle, ``fill_fraction`` of it outside.

    The swath is a band of constant width centred on the grid, as a north-up product of a rotated flight line.
    """
    angle = np.radians(angle_degrees)
    row, column = np.mgrid[:rows, :columns]
    across_track = np.abs((column - (columns - 1) / 2) * np.cos(angle) + (row - (rows - 1) / 2) * np.sin(angle))
    return across_track <= np.quantile(across_track, 1 - fill_fraction)
