"""What the import tests read back from an imported product."""
import pytest
from osgeo import gdal


def envi_list(dataset, key):
    text = dataset.GetMetadataItem(key, "ENVI")
    return [float(value) for value in text.strip("{}").split(",")]


def spectral_metadata(path):
    """(wavelengths, fwhm, bbl) from the ENVI domain, and each band's own wavelength / bbl items."""
    dataset = gdal.Open(path)
    assert dataset.GetMetadataItem("wavelength_units", "ENVI") == "Nanometers"
    per_band = [dataset.GetRasterBand(index + 1).GetMetadata() for index in range(dataset.RasterCount)]
    assert [float(band["wavelength"]) for band in per_band] == pytest.approx(envi_list(dataset, "wavelength"))
    assert [int(band["bbl"]) for band in per_band] == envi_list(dataset, "bbl")
    return envi_list(dataset, "wavelength"), envi_list(dataset, "fwhm"), envi_list(dataset, "bbl")
