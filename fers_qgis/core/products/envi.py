"""AVIRIS-NG / AVIRIS-3 ENVI reflectance: ENVI files whose header carries wavelengths (nm or um) and bad-band
lists, read through GDAL's raster API."""
import os
from typing import Optional

from osgeo import gdal

from ..errors import InputError
from ..raster import nanometres_per_unit
from .reader import PRODUCT_FILL, GdalRaster, ProductHeader, as_floats, band_ranges

ENVI_REFLECTANCE = "envi"


def envi_data_file(path: str) -> Optional[str]:
    """The ENVI data file for ``path`` (itself, or the data file beside a chosen .hdr), if GDAL reads it as ENVI
    with wavelengths."""
    candidates = [path]
    if path.lower().endswith(".hdr"):
        stem = path[:-4]
        candidates = [stem] + [stem + extension for extension in (".img", ".bsq", ".bil", ".bip", ".dat", ".raw")]
    for candidate in candidates:
        if not os.path.isfile(candidate):
            continue
        gdal.PushErrorHandler("CPLQuietErrorHandler")  # "not recognised as ENVI" is an answer here, not an error
        try:
            dataset = gdal.OpenEx(candidate, gdal.OF_RASTER, allowed_drivers=["ENVI"])
        except RuntimeError:  # GDAL's errors raise once anyone called gdal.UseExceptions() (QGIS 3.40's Processing)
            dataset = None
        finally:
            gdal.PopErrorHandler()
        if dataset is not None and dataset.GetMetadataItem("wavelength", "ENVI"):
            return candidate
    return None


class EnviReflectance(GdalRaster):
    """AVIRIS-NG / AVIRIS-3 ENVI reflectance: wavelengths (nm or um) and fwhm, bbl, fill -9999 (declared as data
    ignore value or not), map info (north-up or rotated) as GDAL reads it."""

    kind = ENVI_REFLECTANCE
    name = "AVIRIS-NG / AVIRIS-3 ENVI reflectance"

    def __init__(self, path: str):
        super().__init__(path)
        envi = self._dataset.GetMetadata("ENVI") or {}
        bands = self._dataset.RasterCount
        wavelengths = as_floats(envi["wavelength"])
        if len(wavelengths) != bands:
            raise InputError(f"{os.path.basename(path)}: the header lists {len(wavelengths)} wavelengths for "
                             f"{bands} bands.")
        factor = nanometres_per_unit(wavelengths, envi.get("wavelength_units", "").lower())
        wavelengths = [value * factor for value in wavelengths]
        fwhm = as_floats(envi.get("fwhm", ""))
        fwhm = [value * factor for value in fwhm] if len(fwhm) == bands else [None] * bands
        bbl = as_floats(envi.get("bbl", ""))
        good = [value != 0 for value in bbl] if len(bbl) == bands else [True] * bands
        notes = []
        if self.fill is None:
            self.fill = PRODUCT_FILL
            notes.append(f"No data ignore value declared: {PRODUCT_FILL:g}, the AVIRIS fill value, is treated as fill.")
        if not all(good):
            notes.append(f"The header's bbl marks {good.count(False)} bands as bad: {band_ranges(good, wavelengths)}.")
        self.header = ProductHeader(kind=self.kind, wavelengths_nm=wavelengths, fwhm_nm=fwhm, good_bands=good,
                                    notes=notes, **self.grid())
