"""PNG quick-looks of score rasters: a perceptual colour ramp stretched on percentiles, nodata transparent."""
import numpy as np
from osgeo import gdal

from .output import OUTPUT_NODATA
from .raster import gdal_errors_as_exceptions

# Anchor colours of matplotlib's "inferno" ramp (perceptually uniform, readable in greyscale), interpolated.
_INFERNO_ANCHORS = np.array([
    (0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21), (250, 193, 39),
    (252, 255, 164)], dtype=np.float64)


def colourise(values_hw: np.ndarray, valid_hw: np.ndarray, low_percentile: float = 2.0,
              high_percentile: float = 99.5) -> np.ndarray:
    """(rows, columns, 4) uint8 RGBA of ``values_hw``, stretched between two percentiles of the valid values."""
    rgba = np.zeros(values_hw.shape + (4,), dtype=np.uint8)
    if not valid_hw.any():
        return rgba
    low, high = np.percentile(values_hw[valid_hw], [low_percentile, high_percentile])
    position = np.clip((values_hw - low) / max(high - low, 1e-12), 0, 1) * (len(_INFERNO_ANCHORS) - 1)
    anchor = np.minimum(position.astype(int), len(_INFERNO_ANCHORS) - 2)
    weight = (position - anchor)[..., None]
    colours = (1 - weight) * _INFERNO_ANCHORS[anchor] + weight * _INFERNO_ANCHORS[anchor + 1]
    rgba[..., :3] = np.round(colours).astype(np.uint8)
    rgba[..., 3] = np.where(valid_hw, 255, 0)
    return rgba


def write_quicklook(score_path: str, png_path: str) -> None:
    """Render band 1 of a score GeoTIFF (nodata transparent) to a PNG of the same pixel size."""
    with gdal_errors_as_exceptions():
        dataset = gdal.Open(score_path)
        band = dataset.GetRasterBand(1)
        values = band.ReadAsArray().astype(np.float64)
        nodata = band.GetNoDataValue()
        valid = np.isfinite(values) & (values != (OUTPUT_NODATA if nodata is None else nodata))
        rgba = colourise(values, valid)
        memory = gdal.GetDriverByName("MEM").Create("", rgba.shape[1], rgba.shape[0], 4, gdal.GDT_Byte)
        for index in range(4):
            memory.GetRasterBand(index + 1).WriteArray(rgba[..., index])
        gdal.GetDriverByName("PNG").CreateCopy(png_path, memory)
