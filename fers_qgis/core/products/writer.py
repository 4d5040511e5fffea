"""The import: a product's reader written block by block as the GeoTIFF every FERS algorithm (and EnMAP-Box) reads.

The output is a tiled Float32 GeoTIFF in ascending wavelength order, nodata -9999, with each band's wavelength (nm),
FWHM and bad-band flag both per band and in the ENVI metadata domain (``wavelength``, ``fwhm``, ``bbl`` lists), the
layout EnMAP-Box and ``raster.describe_raster`` read. An EMIT mask file is written as a Byte valid-pixel mask.
"""
import os
import time
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np
from osgeo import gdal

from ..errors import InputError
from ..progress import Progress
from ..output import MASK_NODATA, OUTPUT_NODATA, RasterWriter, check_output_path
from ..raster import RasterInfo, gdal_errors_as_exceptions
from . import reader
from .emit import EmitL2AMask
from .reader import MAP_GRID, ProductHeader, ProductReader, band_ranges
from .recognition import PRODUCT_NAMES, open_product, open_scene_product


@dataclass(frozen=True)
class ImportSummary:
    """What an import did, for the log."""

    kind: str
    output_path: str
    width: int
    height: int
    band_count: int
    bad_bands: Tuple[int, ...]  # 1-based, flagged bbl = 0 in the output
    valid_pixels: int
    seconds: float
    notes: Tuple[str, ...] = ()

    @property
    def product_name(self) -> str:
        return PRODUCT_NAMES[self.kind]


def import_scene(input_path: str, output_path: str, progress: Optional[Progress] = None) -> ImportSummary:
    """Import a product given to a detector as its scene (see describe_scene_product)."""
    return _import(lambda: open_scene_product(input_path), input_path, output_path, progress)


def import_product(input_path: str, output_path: str, progress: Optional[Progress] = None,
                   geometry: str = MAP_GRID) -> ImportSummary:
    """Write ``input_path`` (any product of PRODUCT_NAMES) as a tiled GeoTIFF at ``output_path``.

    ``geometry`` SENSOR_GEOMETRY writes an EMIT swath as recorded (georeferenced by GCPs) instead of on its map
    grid; other products are written as delivered either way. Raises InputError before creating any file when the
    product cannot be read; a failed or cancelled import leaves no file behind."""
    return _import(lambda: open_product(input_path, geometry), input_path, output_path, progress)


def _import(open_reader, input_path: str, output_path: str, progress: Optional[Progress]) -> ImportSummary:
    """Open the product (``open_reader()``), write it, close it, and summarise what was written."""
    started = time.monotonic()
    progress = progress or Progress()
    product = open_reader()
    try:
        check_output_path(output_path, [input_path, product.source_path])
        write = _write_valid_pixel_mask if isinstance(product, EmitL2AMask) else _write_product
        valid_pixels = write(product, output_path, progress)
    finally:
        product.close()
    header = product.header
    bad_bands = tuple(index for index, good in enumerate(header.good_bands, 1) if not good)
    return ImportSummary(kind=product.kind, output_path=output_path, width=header.width, height=header.height,
                         band_count=len(header.wavelengths_nm) or 1, bad_bands=bad_bands, valid_pixels=valid_pixels,
                         seconds=time.monotonic() - started, notes=tuple(header.notes))


def _output_grid(product: ProductReader) -> RasterInfo:
    """The output raster's grid and georeferencing, as the writer takes them."""
    header = product.header
    bands = max(1, len(header.wavelengths_nm))
    return RasterInfo(path=product.source_path, width=header.width, height=header.height, band_count=bands,
                      numpy_dtypes=(np.dtype(np.float32),) * bands, nodata=(OUTPUT_NODATA,) * bands,
                      geotransform=header.geotransform, projection_wkt=header.projection_wkt, band_names=(),
                      wavelengths_nm=tuple(header.wavelengths_nm) or (None,), block_height=1,
                      block_width=header.width, gcps=header.gcps, gcp_projection_wkt=header.gcp_projection_wkt)


def _product_rows(product: ProductReader, bands: int, progress: Progress
                  ) -> Iterator[Tuple[int, np.ndarray, np.ndarray]]:
    """(first_row, cube_bhw, valid_hw) of the output grid in blocks of rows holding ``bands`` float32 values a
    pixel within BLOCK_BYTES, after the header's notes go to the log; cancel and progress between blocks."""
    header = product.header
    for note in header.notes:
        progress.info(note)
    rows_per_block = max(1, min(header.height, reader.BLOCK_BYTES // max(1, header.width * bands * 4)))
    name = os.path.basename(product.source_path)
    for first_row in range(0, header.height, rows_per_block):
        progress.check_cancelled()
        row_count = min(rows_per_block, header.height - first_row)
        try:
            cube_bhw, valid_hw = product.read_rows(first_row, row_count)
        except RuntimeError as error:
            raise InputError(f"Reading rows {first_row}-{first_row + row_count - 1} of {name} failed: "
                             f"{error}") from error
        yield first_row, cube_bhw, valid_hw
        progress.set_fraction((first_row + row_count) / header.height)


def _write_valid_pixel_mask(product: EmitL2AMask, output_path: str, progress: Progress) -> int:
    """Byte GeoTIFF, 1 = usable, 0 = flagged or no data; returns the number of usable pixels."""
    header = product.header
    usable_pixels = 0
    with gdal_errors_as_exceptions(), RasterWriter(output_path, _output_grid(product),
                                                   ["Valid-pixel mask (1 = usable)"], nodata=MASK_NODATA,
                                                   data_type=gdal.GDT_Byte) as writer:
        for first_row, cube_bhw, valid_hw in _product_rows(product, product.swath.bands, progress):
            usable_hw = product.usable(cube_bhw, valid_hw)
            writer.write(first_row, usable_hw[None].astype(np.uint8), np.ones_like(usable_hw))
            usable_pixels += int(usable_hw.sum())
    progress.info(f"{usable_pixels} usable pixels of {header.width * header.height}.")
    return usable_pixels


def _write_product(product: ProductReader, output_path: str, progress: Progress) -> int:
    """Write the product block by block through the atomic GeoTIFF writer; returns the number of valid pixels."""
    header = product.header
    band_names = [f"Band {index} ({wavelength:g} nm)"
                  for index, wavelength in enumerate(header.wavelengths_nm, 1)]
    valid_pixels = 0
    name = os.path.basename(product.source_path)
    band_range = _BandRange(len(band_names))
    with gdal_errors_as_exceptions(), RasterWriter(output_path, _output_grid(product), band_names,
                                                   header.wavelengths_nm) as writer:
        for first_row, cube_bhw, valid_hw in _product_rows(product, len(band_names), progress):
            writer.write(first_row, cube_bhw, valid_hw)
            band_range.add(cube_bhw[:, valid_hw])
            valid_pixels += int(valid_hw.sum())
        if valid_pixels == 0:
            raise InputError(f"{name} holds no valid pixel (every pixel is fill).")
        _flag_empty_bands(header, band_range.empty(), progress)
        _write_spectral_metadata(writer, header)
    return valid_pixels


class _BandRange:
    """Each band's lowest and highest value over the valid pixels, fill and NaN left out."""

    def __init__(self, band_count: int):
        self.low = np.full(band_count, np.inf)
        self.high = np.full(band_count, -np.inf)

    def add(self, values_bn: np.ndarray) -> None:
        usable = np.isfinite(values_bn) & (values_bn != OUTPUT_NODATA)
        self.low = np.minimum(self.low, np.where(usable, values_bn, np.inf).min(axis=1, initial=np.inf))
        self.high = np.maximum(self.high, np.where(usable, values_bn, -np.inf).max(axis=1, initial=-np.inf))

    def empty(self) -> np.ndarray:
        """Bands without two different values: no data at all, or one constant (a zeroed band)."""
        return ~(self.high > self.low)


def _flag_empty_bands(header: ProductHeader, empty: np.ndarray, progress: Progress) -> None:
    """Flag bad the bands that hold no information, whatever the product's own flags said, and say so."""
    newly = [bool(is_empty and good) for is_empty, good in zip(empty, header.good_bands)]
    if not any(newly):
        return
    header.good_bands = [good and not is_empty for good, is_empty in zip(header.good_bands, empty)]
    note = (f"{sum(newly)} bands hold no data or one constant value over the valid pixels and are flagged bad "
            f"(bbl = 0): {band_ranges([not flag for flag in newly], header.wavelengths_nm)}.")
    header.notes.append(note)
    progress.info(note)


def _write_spectral_metadata(writer: RasterWriter, header: ProductHeader) -> None:
    """FWHM and bad-band flags per band, and the three lists in the ENVI domain as EnMAP-Box reads them."""
    def envi_list(values) -> str:
        return "{" + ", ".join(values) + "}"

    for index, (fwhm, good) in enumerate(zip(header.fwhm_nm, header.good_bands), 1):
        items = {"bbl": "1" if good else "0"}
        if fwhm is not None:
            items["fwhm"] = f"{fwhm:g}"
        writer.set_metadata(items, band=index)
    items = {"wavelength_units": "Nanometers",
             "wavelength": envi_list(f"{value:g}" for value in header.wavelengths_nm),
             "bbl": envi_list("1" if good else "0" for good in header.good_bands)}
    if all(value is not None for value in header.fwhm_nm):
        items["fwhm"] = envi_list(f"{value:g}" for value in header.fwhm_nm)
    writer.set_metadata(items, domain="ENVI")
