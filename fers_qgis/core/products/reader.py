"""The reader interface every sensor module implements (``ProductReader``), the header it fills in
(``ProductHeader``), the geometries a product can be opened in, and the small helpers readers share.

A reader turns one product as delivered into the rows of one output raster: it learns everything the output
needs from the product's metadata when it is opened (``header``), then hands over the pixels a block of rows at a
time (``read_rows``), so that a product larger than memory imports block by block. The writer (``writer``) owns
the output file; recognition (``recognition``) decides which reader opens a path.
"""
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal

from ..errors import InputError
from ..output import OUTPUT_NODATA
from ..raster import gdal_errors_as_exceptions

# Where an EMIT swath's pixels go: its map grid (orthorectified through the GLT), or the swath as recorded.
MAP_GRID, SENSOR_GEOMETRY = "map", "sensor"
GEOMETRIES = (MAP_GRID, SENSOR_GEOMETRY)
# How a product given straight to a detector is imported: an EMIT swath as recorded, which scores exactly like the
# scene, where its map grid adds the rotation and the GLT's repeated pixels (docs/RESULTS.md).
SCENE_GEOMETRY = SENSOR_GEOMETRY

# Fill value of EMIT and AVIRIS-NG / AVIRIS-3 products, declared or not.
PRODUCT_FILL = -9999.0
# Bytes of pixels a block of the import holds at once (output block, and source lines read for it). Read as
# ``reader.BLOCK_BYTES`` where it is used, so that this one setting sizes every block.
BLOCK_BYTES = 64 * 2**20


@dataclass
class ProductHeader:
    """The output raster as known before any pixel is read: grid, bands in output order, decisions to log."""

    kind: str
    width: int
    height: int
    wavelengths_nm: List[float]
    fwhm_nm: List[Optional[float]]
    good_bands: List[bool]
    geotransform: Tuple[float, ...] = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    projection_wkt: str = ""
    notes: List[str] = field(default_factory=list)
    gcps: Tuple[gdal.GCP, ...] = ()       # georeferencing of a swath in sensor geometry (no geotransform)
    gcp_projection_wkt: str = ""


class ProductReader:
    """A product opened for import: its output header, and rows of the output grid on demand.

    A reader for a sensor provides:

    - ``kind`` and ``name`` (class attributes): the product's key in ``PRODUCT_NAMES`` (what ``product_kind``
      answers) and the name the log gives it.
    - a constructor that opens the product (``source_path`` is set by this base class) and reads its metadata
      only, raising ``InputError`` that says why when the file is not a readable product of its kind; nothing is
      written before it returns.
    - ``header``, a ``ProductHeader`` set by the constructor: the output size (``width``, ``height``); per output
      band, in output order, the wavelength in nm (``wavelengths_nm``), FWHM in nm or None (``fwhm_nm``) and
      whether the band is good (``good_bands``, written as ENVI ``bbl``); the georeferencing, either a
      ``geotransform`` with its CRS (``projection_wkt``) or ground control points (``gcps``,
      ``gcp_projection_wkt``) for a grid no geotransform describes; and ``notes``, the decisions the log reports.
    - ``read_rows(first_row, row_count)``: those output rows as the output holds them, cube_bhw float32
      (bands, rows, columns) in the header's band order (scaled numbers already turned into reflectance), and
      valid_hw, the valid pixels (bool (rows, columns), False where the product holds no data: the writer writes
      nodata there). It is called for consecutive blocks of rows from the top; a RuntimeError it raises (GDAL's)
      is reported as an InputError naming the rows.
    - ``close()``: release the product's files; ``header`` stays readable after it.

    A reader of a product with a geometry lookup table also takes the geometry, MAP_GRID or SENSOR_GEOMETRY
    (``emit.EmitSwath``); every other product is written as delivered. A reader of a mask instead of a cube
    (``emit.EmitL2AMask``) has no bands in its header and says which pixels are usable (``usable``): the writer
    writes it as a Byte valid-pixel mask.
    """

    kind = ""
    name = ""

    def __init__(self, path: str):
        self.source_path = path
        self.header: Optional[ProductHeader] = None

    def read_rows(self, first_row: int, row_count: int) -> Tuple[np.ndarray, np.ndarray]:
        """(cube_bhw float32 in output band order, valid_hw bool) for output rows [first_row, first_row+count)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the files."""


class GdalRaster(ProductReader):
    """A product GDAL reads as a raster (GeoTIFF, ENVI): rows read through GDAL, then ``_to_reflectance``."""

    def __init__(self, path: str):
        super().__init__(path)
        with gdal_errors_as_exceptions():
            try:
                self._dataset = gdal.Open(path, gdal.GA_ReadOnly)
            except RuntimeError as error:
                raise InputError(f"Cannot read {os.path.basename(path)} as a raster: {error}") from error
        self.fill = self._dataset.GetRasterBand(1).GetNoDataValue()

    def grid(self) -> dict:
        return {"width": self._dataset.RasterXSize, "height": self._dataset.RasterYSize,
                "geotransform": tuple(self._dataset.GetGeoTransform()),
                "projection_wkt": self._dataset.GetProjection() or ""}

    def read_rows(self, first_row, row_count):
        numbers = np.asarray(self._dataset.ReadAsArray(0, first_row, self._dataset.RasterXSize, row_count),
                             dtype=np.float64).reshape(self._dataset.RasterCount, row_count, -1)
        valid_hw = valid_pixels(numbers, self.fill)
        cube_bhw = self._to_reflectance(numbers).astype(np.float32)
        if self.fill is not None:
            cube_bhw[numbers == self.fill] = OUTPUT_NODATA
        return cube_bhw, valid_hw

    def _to_reflectance(self, numbers_bhw: np.ndarray) -> np.ndarray:
        return numbers_bhw

    def close(self):
        self._dataset = None


def valid_pixels(cube_bhw: np.ndarray, fill: Optional[float]) -> np.ndarray:
    """Pixels with at least one finite band that is not the fill value."""
    usable = np.isfinite(cube_bhw)
    if fill is not None:
        usable &= cube_bhw != np.float32(fill)
    return usable.any(axis=0)


def as_floats(value) -> List[float]:
    if isinstance(value, str):
        return [float(item) for item in re.split(r"[\s,{}]+", value) if item]
    return [float(item) for item in np.atleast_1d(value)]


def band_ranges(good: Sequence[bool], wavelengths: Sequence[float]) -> str:
    """'band 3 (950 nm), bands 7-9 (1350-1420 nm)' for the bad bands."""
    parts, index = [], 0
    while index < len(good):
        if good[index]:
            index += 1
            continue
        end = index
        while end + 1 < len(good) and not good[end + 1]:
            end += 1
        if end == index:
            parts.append(f"band {index + 1} ({wavelengths[index]:g} nm)")
        else:
            parts.append(f"bands {index + 1}-{end + 1} ({wavelengths[index]:g}-{wavelengths[end]:g} nm)")
        index = end + 1
    return ", ".join(parts)
