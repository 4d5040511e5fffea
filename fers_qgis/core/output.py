"""Outputs: checked before any work starts, written as GeoTIFF on the input's grid to a hidden file renamed into
place on success, so a failed or cancelled run never leaves a partial output."""
import os
import uuid
from typing import Dict, Optional, Sequence

import numpy as np
from osgeo import gdal, gdal_array

from .errors import InputError
from .raster import RasterInfo, gdal_errors_as_exceptions

OUTPUT_NODATA = -9999.0
MASK_NODATA = 255  # of Byte mask outputs (anomaly mask, imported valid-pixel mask)
_GTIFF_OPTIONS = ["TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"]
# Written blocks wait in GDAL's process-wide cache until it is full (5% of RAM by default); writers flush them
# to disk after this many bytes instead.
WRITE_CACHE_BYTES = 64 * 2**20


def check_output_path(output_path: str, input_paths: Sequence[str]) -> None:
    """Refuse outputs that would overwrite an input or land in a folder that does not exist or is read-only."""
    if not output_path:
        raise InputError("No output file was given.")
    target = os.path.realpath(output_path)
    for input_path in input_paths:
        if input_path and target == os.path.realpath(input_path):
            raise InputError(f"The output file {output_path!r} is also an input: choose another output file.")
    folder = os.path.dirname(target) or "."
    if not os.path.isdir(folder):
        raise InputError(f"The output folder {folder!r} does not exist.")
    if not os.access(folder, os.W_OK):
        raise InputError(f"The output folder {folder!r} is not writable.")


class FlushingWrites:
    """Counts bytes written to a dataset and flushes GDAL's cached blocks of it every WRITE_CACHE_BYTES."""

    def __init__(self):
        self._pending = 0

    def written(self, dataset: gdal.Dataset, nbytes: int) -> None:
        self._pending += nbytes
        if self._pending > WRITE_CACHE_BYTES:
            dataset.FlushCache()
            self._pending = 0


class RasterWriter:
    """GeoTIFF (Float32 unless told otherwise) on the input's pixel grid, written to a hidden file and renamed
    into place on success.

    Used as a context manager: if the block raises (an error or a cancel), the hidden file is deleted and any
    previous file at the output path is left untouched, so a failed run never leaves a partial output.
    """

    def __init__(self, output_path: str, like: RasterInfo, band_names: Sequence[str],
                 wavelengths_nm: Optional[Sequence[Optional[float]]] = None, nodata: float = OUTPUT_NODATA,
                 data_type: int = gdal.GDT_Float32):
        self.output_path = output_path
        self._data_type = data_type
        self._numpy_type = gdal_array.GDALTypeCodeToNumericTypeCode(data_type)
        self._like = like
        self._band_names = list(band_names)
        self._wavelengths = list(wavelengths_nm) if wavelengths_nm else [None] * len(self._band_names)
        self._nodata = nodata
        folder, name = os.path.split(os.path.abspath(output_path))
        self._partial_path = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.partial.tif")
        self._dataset = None
        self._flushing = FlushingWrites()

    def __enter__(self) -> "RasterWriter":
        driver = gdal.GetDriverByName("GTiff")
        with gdal_errors_as_exceptions():
            try:
                self._dataset = driver.Create(self._partial_path, self._like.width, self._like.height,
                                              len(self._band_names), self._data_type, _GTIFF_OPTIONS + [
                                                  # floating-point or horizontal differencing before deflate
                                                  "PREDICTOR=3" if np.dtype(self._numpy_type).kind == "f"
                                                  else "PREDICTOR=2"])
            except RuntimeError as error:
                raise InputError(f"Cannot create the output file {self.output_path!r}: {error}") from error
        if self._like.gcps and not self._like.has_geotransform:
            self._dataset.SetGCPs(self._like.gcps, self._like.gcp_projection_wkt)
        else:
            self._dataset.SetGeoTransform(self._like.geotransform)
        if self._like.projection_wkt:
            self._dataset.SetProjection(self._like.projection_wkt)
        if self._like.rpc_metadata:
            self._dataset.SetMetadata(dict(self._like.rpc_metadata), "RPC")
        for index, (name, wavelength) in enumerate(zip(self._band_names, self._wavelengths)):
            band = self._dataset.GetRasterBand(index + 1)
            band.SetNoDataValue(self._nodata)
            band.SetDescription(name)
            if wavelength is not None:
                band.SetMetadata({"wavelength": f"{wavelength:g}", "wavelength_units": "nanometers"})
        return self

    def set_metadata(self, items: Dict[str, str], domain: str = "", band: Optional[int] = None) -> None:
        """Add metadata items to the output (or to its 1-based ``band``), e.g. ENVI-domain spectral lists."""
        target = self._dataset if band is None else self._dataset.GetRasterBand(band)
        target.SetMetadata({**(target.GetMetadata(domain) or {}), **items}, domain)

    def write(self, first_row: int, values_bhw: np.ndarray, valid_hw: np.ndarray, first_column: int = 0) -> None:
        """Write a (bands, rows, columns) block at (first_row, first_column); invalid pixels become nodata."""
        block = np.where(valid_hw[None], values_bhw, self._nodata).astype(self._numpy_type)
        with gdal_errors_as_exceptions():
            # One dataset-level write of all bands: each (pixel-interleaved) file block is encoded once per call.
            self._dataset.WriteArray(block, first_column, first_row)
        self._flushing.written(self._dataset, block.nbytes)

    def __exit__(self, exc_type, exc, traceback) -> None:
        dataset, self._dataset = self._dataset, None
        try:
            if dataset is not None:
                dataset.FlushCache()
                dataset = None
            if exc_type is None:
                os.replace(self._partial_path, self.output_path)
        finally:
            if os.path.exists(self._partial_path):
                os.remove(self._partial_path)
