"""A job's temporary rasters: uncompressed Float32 GeoTIFFs (NaN where invalid) in a hidden folder next to the
output, deleted at the end, also on error or cancel."""
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from .errors import InputError
from .output import FlushingWrites
from .raster import BlockReader, RasterInfo, describe_raster, gdal_errors_as_exceptions


@dataclass(frozen=True)
class RasterFile:
    """A finished temporary raster: its path, band count and the range of its valid values."""

    path: str
    bands: int
    minimum: float
    maximum: float

    def reader(self) -> BlockReader:
        """A reader of all its bands (NaN pixels read as invalid) that copies just each window's bytes, however
        thin the window; the caller closes it."""
        return BlockReader(describe_raster(self.path), tuple(range(1, self.bands + 1)), direct_io=True)


class TempRaster:
    """An uncompressed Float32 GeoTIFF in the job's temporary folder; NaN marks invalid pixels."""

    def __init__(self, path: str, like: RasterInfo, bands: int):
        self.path = path
        self.bands = bands
        with gdal_errors_as_exceptions():
            try:
                # Tiled and pixel-interleaved: 2-D block writes of all bands touch each file block once.
                self._dataset = gdal.GetDriverByName("GTiff").Create(
                    path, like.width, like.height, bands, gdal.GDT_Float32,
                    ["BIGTIFF=IF_SAFER", "TILED=YES", "BLOCKXSIZE=128", "BLOCKYSIZE=128", "INTERLEAVE=PIXEL"])
            except RuntimeError as error:
                raise InputError(f"Cannot write temporary data next to the output ({path}): {error}") from error
        self.minimum, self.maximum = np.inf, -np.inf
        self._flushing = FlushingWrites()

    def write(self, first_row: int, values_bhw: np.ndarray, valid_hw: np.ndarray, first_column: int = 0) -> None:
        """Write a block (same call as RasterWriter.write) and track the range of its valid values."""
        block = np.where(valid_hw[None], values_bhw, np.nan).astype(np.float32)
        if valid_hw.any():
            self.minimum = min(self.minimum, float(np.nanmin(block)))
            self.maximum = max(self.maximum, float(np.nanmax(block)))
        with gdal_errors_as_exceptions():
            self._dataset.WriteArray(block, first_column, first_row)
        self._flushing.written(self._dataset, block.nbytes)

    def finish(self) -> "RasterFile":
        """Close for writing; the finished file."""
        self._dataset.FlushCache()
        self._dataset = None
        return RasterFile(self.path, self.bands, self.minimum, self.maximum)

    def close(self) -> None:
        """Drop the dataset without finishing it (the workspace is being deleted)."""
        self._dataset = None


class Workspace:
    """The job's hidden temporary folder next to the output; removes everything in it on close."""

    def __init__(self, output_path: str):
        folder, name = os.path.split(os.path.abspath(output_path))
        # Named like the output's hidden partial file, so that a retry after a killed worker finds and removes it.
        self.folder = tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=folder)
        self._open: list = []

    def file(self, name: str) -> str:
        """The path of a file named ``name`` in the folder."""
        return os.path.join(self.folder, name)

    def raster(self, name: str, like: RasterInfo, bands: int) -> TempRaster:
        """A new temporary raster on the grid of ``like``."""
        temp = TempRaster(self.file(name + ".tif"), like, bands)
        self._open.append(temp)
        return temp

    def close(self) -> None:
        """Close every file the job opened here and delete the folder."""
        for item in self._open:
            item.close()
        self._open = []
        shutil.rmtree(self.folder, ignore_errors=True)
