"""EnMAP L2A: a SPECTRAL_IMAGE GeoTIFF (or ENVI image) whose wavelengths, gains and band statistics live in
METADATA.XML beside it; from its folder, or in place from the delivery ZIP (GDAL's /vsizip/)."""
import os
from typing import Optional
from xml.etree import ElementTree  # nosec B405: reads a local product file the user chose, not remote input

import numpy as np
from osgeo import gdal

from ..errors import InputError
from .reader import GdalRaster, ProductHeader, band_ranges

ENMAP_L2A = "enmap-l2a"


def enmap_metadata_xml(path: str) -> Optional[str]:
    """The METADATA.XML of an EnMAP product when ``path`` is it, or its SPECTRAL_IMAGE raster (paths may be GDAL
    /vsizip/ paths)."""
    folder, name = os.path.split(path)
    if name.upper().endswith("METADATA.XML"):
        candidate = path
    elif "SPECTRAL_IMAGE" in name.upper():
        prefix = name[:name.upper().index("SPECTRAL_IMAGE")]
        matches = [entry for entry in (gdal.ReadDir(folder or ".") or [])
                   if entry.upper() == (prefix + "METADATA.XML").upper()]
        if not matches:
            return None
        candidate = os.path.join(folder, matches[0])
    else:
        return None
    return candidate if b"bandCharacterisation" in _file_bytes(candidate) else None


def _file_bytes(path: str) -> bytes:
    """A whole (small) file's content, also inside a ZIP (GDAL's virtual file systems)."""
    handle = gdal.VSIFOpenL(path, "rb")
    if handle is None:
        raise InputError(f"Cannot read {path}.")
    try:
        gdal.VSIFSeekL(handle, 0, 2)
        size = gdal.VSIFTellL(handle)
        gdal.VSIFSeekL(handle, 0, 0)
        return gdal.VSIFReadL(1, size, handle) or b""
    finally:
        gdal.VSIFCloseL(handle)


def zipped_enmap_metadata_xml(path: str) -> str:
    """The METADATA.XML inside an EnMAP delivery ZIP (at any depth, also inside one inner ZIP), read in place."""
    archive = "/vsizip/" + os.path.abspath(path)
    entries = gdal.ReadDirRecursive(archive)
    if entries is None:
        raise InputError(f"{os.path.basename(path)} is not a ZIP file GDAL can read (damaged or incomplete?).")
    candidates = [f"{archive}/{entry}" for entry in entries if entry.upper().endswith("METADATA.XML")]
    for inner in (entry for entry in entries if entry.upper().endswith(".ZIP")):
        inner_archive = f"/vsizip/{{{archive}/{inner}}}"
        candidates += [f"{inner_archive}/{entry}" for entry in gdal.ReadDirRecursive(inner_archive) or []
                       if entry.upper().endswith("METADATA.XML")]
    products = [candidate for candidate in candidates if enmap_metadata_xml(candidate)]
    if len(products) != 1:
        found = "no EnMAP METADATA.XML" if not products else f"{len(products)} EnMAP products"
        raise InputError(f"{os.path.basename(path)} holds {found}: import an EnMAP L2A delivery ZIP with one "
                         f"product, or unzip it and choose the product's METADATA.XML.")
    return products[0]


class EnmapL2A(GdalRaster):
    """EnMAP L2A: SPECTRAL_IMAGE GeoTIFF of scaled numbers; METADATA.XML gives per band the centre wavelength
    (wavelengthCenterOfGravity), FWHMOfBand, GainOfBand and OffsetOfBand (reflectance = gain x number + offset),
    and band statistics: a band with zero standard deviation holds no data and is flagged bad."""

    kind = ENMAP_L2A
    name = "EnMAP L2A (GeoTIFF with METADATA.XML)"

    def __init__(self, metadata_xml: str):
        root = ElementTree.fromstring(_file_bytes(metadata_xml))  # nosec B314: a local product file the user chose
        super().__init__(self._spectral_image(metadata_xml))
        self.metadata_xml = metadata_xml
        bands = self._dataset.RasterCount
        characterisation = root.findall(".//bandCharacterisation/bandID")
        if len(characterisation) != bands:
            raise InputError(f"{os.path.basename(metadata_xml)} describes {len(characterisation)} bands but the "
                             f"spectral image has {bands}.")

        def numbers(elements, *tags):
            values = []
            for element in elements:
                text = next((element.findtext(tag) for tag in tags if element.find(tag) is not None), None)
                values.append(None if text is None else float(text))
            return values

        wavelengths = numbers(characterisation, "wavelengthCenterOfGravity", "wavelengthCenterOfBand")
        if None in wavelengths:
            raise InputError(f"{os.path.basename(metadata_xml)} lacks a band's wavelengthCenterOfGravity.")
        self._gains = np.array([1.0 if gain is None else gain
                                for gain in numbers(characterisation, "GainOfBand")])[:, None, None]
        self._offsets = np.array([0.0 if offset is None else offset
                                  for offset in numbers(characterisation, "OffsetOfBand")])[:, None, None]
        statistics = root.findall(".//bandStatistics/bandID")
        deviations = numbers(statistics, "stdDeviation") if len(statistics) == bands else [None] * bands
        good = [deviation is None or deviation > 0 for deviation in deviations]
        notes = []
        if self.fill is None:
            declared = root.findtext(".//noDataValue")
            self.fill = float(declared) if declared is not None else None
        if not all(good):
            notes.append(f"EnMAP band statistics: {good.count(False)} bands have no variation (no data) and are "
                         f"flagged bad: {band_ranges(good, wavelengths)}.")
        self.header = ProductHeader(kind=self.kind, wavelengths_nm=wavelengths,
                                    fwhm_nm=numbers(characterisation, "FWHMOfBand"), good_bands=good, notes=notes,
                                    **self.grid())

    @staticmethod
    def _spectral_image(metadata_xml: str) -> str:
        """The SPECTRAL_IMAGE beside the METADATA.XML: GeoTIFF, or ENVI band/line/pixel interleaved (with its .HDR),
        as the EnMAP portal delivers either."""
        folder, name = os.path.split(metadata_xml)
        prefix = name[:name.upper().index("METADATA.XML")]
        for entry in sorted(gdal.ReadDir(folder or ".") or []):
            upper = entry.upper()
            if upper.startswith((prefix + "SPECTRAL_IMAGE").upper()) and \
                    upper.endswith((".TIF", ".TIFF", ".BSQ", ".BIL", ".BIP")):
                return os.path.join(folder, entry)
        raise InputError(f"No {prefix}SPECTRAL_IMAGE (.TIF, .BSQ, .BIL or .BIP) beside {name}: the EnMAP product "
                         f"is incomplete.")

    def _to_reflectance(self, numbers_bhw):
        return numbers_bhw * self._gains + self._offsets
