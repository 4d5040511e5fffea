"""PRISMA L2D: an HDF-EOS5 file with VNIR and SWIR cubes stored (rows, bands, columns) in descending wavelength
order and scaled to 16 bits.

GDAL 3.6 (Debian 12) does not georeference HDF-EOS5 (GDAL 3.7): the cubes are read through GDAL's multidimensional
API and the map grid is taken from the product's own attributes.
"""
import os

import numpy as np
from osgeo import osr

from ..errors import InputError
from .multidim import MultidimCube, find_array, read_attributes
from .reader import ProductHeader, ProductReader, as_floats, band_ranges

PRISMA_L2D = "prisma-l2d"
# Where the two cubes are ("VNIR", "SWIR"): a file with the VNIR one is a PRISMA L2D product.
PRISMA_CUBES = "/HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/{}_Cube"


class PrismaL2D(ProductReader):
    """PRISMA L2D: VNIR_Cube and SWIR_Cube (rows, bands, columns) of 16-bit numbers scaled to reflectance by
    L2ScaleVnirMin/Max and L2ScaleSwirMin/Max; centre wavelengths List_Cw_Vnir / List_Cw_Swir in descending order,
    0 for unused bands; map grid from Epsg_Code and the UL / LR corner pixel centres. Output: both cubes in
    ascending wavelength order; unused bands left out; SWIR bands that overlap the VNIR range flagged bad."""

    kind = PRISMA_L2D
    name = "PRISMA L2D (HDF-EOS5)"

    def __init__(self, path: str, dataset):
        super().__init__(path)
        self._dataset = dataset
        root = dataset.GetRootGroup()
        attributes = read_attributes(root)
        name = os.path.basename(path)
        missing = [key for key in ("Epsg_Code", "Product_ULcorner_easting", "Product_ULcorner_northing",
                                   "Product_LRcorner_easting", "Product_LRcorner_northing") if key not in attributes]
        if missing:
            raise InputError(f"{name} lacks the PRISMA attributes {', '.join(missing)}: it cannot be georeferenced.")
        self.cubes, self._scale, sources = {}, {}, []
        for region, label in (("VNIR", "Vnir"), ("SWIR", "Swir")):
            array = find_array(root, PRISMA_CUBES.format(region))
            if array is None:
                continue
            cube = MultidimCube(array, band_axis=1)
            self.cubes[region] = cube
            low = float(np.atleast_1d(attributes.get(f"L2Scale{label}Min", 0.0))[0])
            high = float(np.atleast_1d(attributes.get(f"L2Scale{label}Max", 1.0))[0])
            self._scale[region] = (low, (high - low) / 65535.0)
            centres = as_floats(attributes.get(f"List_Cw_{label}", []))
            widths = as_floats(attributes.get(f"List_Fwhm_{label}", [])) or [None] * len(centres)
            flags = as_floats(attributes.get(f"List_Cw_{label}_Flags", [])) or [1.0] * len(centres)
            if len(centres) != cube.bands:
                raise InputError(f"{name}: List_Cw_{label} has {len(centres)} wavelengths for {cube.bands} "
                                 f"{region} bands.")
            sources += [(centre, region, index, widths[index], flags[index] != 0)
                        for index, centre in enumerate(centres) if centre > 0]
        unused = sum(cube.bands for cube in self.cubes.values()) - len(sources)
        sources.sort(key=lambda source: source[0])  # ascending wavelength: both cubes are stored descending
        vnir_end = max((source[0] for source in sources if source[1] == "VNIR"), default=0.0)
        good = [flagged and not (region == "SWIR" and centre <= vnir_end)
                for centre, region, _, _, flagged in sources]
        self._bands = [(region, index) for _, region, index, _, _ in sources]
        rows, columns = self.cubes["VNIR"].rows, self.cubes["VNIR"].columns
        geotransform, notes = self._grid(attributes, rows, columns)
        notes.append(f"PRISMA: {len(sources)} bands in ascending wavelength order"
                     + (f"; {unused} unused bands (wavelength 0) left out" if unused else "") + ".")
        overlap = [source for source, is_good in zip(sources, good) if not is_good]
        if overlap:
            wavelengths = [source[0] for source in sources]
            notes.append(f"PRISMA: {len(overlap)} bands flagged bad (bbl = 0): SWIR bands overlapping the VNIR "
                         f"range or flagged in List_Cw_*_Flags: {band_ranges(good, wavelengths)}.")
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(int(np.atleast_1d(attributes["Epsg_Code"])[0]))
        self.header = ProductHeader(kind=self.kind, width=columns, height=rows,
                                    wavelengths_nm=[source[0] for source in sources],
                                    fwhm_nm=[source[3] for source in sources], good_bands=good,
                                    geotransform=geotransform, projection_wkt=srs.ExportToWkt(), notes=notes)

    @staticmethod
    def _grid(attributes, rows: int, columns: int):
        """Geotransform from the UL and LR corner pixel centres (30 m pixels when one row or column)."""
        def value(key):
            return float(np.atleast_1d(attributes[key])[0])

        west, north = value("Product_ULcorner_easting"), value("Product_ULcorner_northing")
        east, south = value("Product_LRcorner_easting"), value("Product_LRcorner_northing")
        size_x = (east - west) / (columns - 1) if columns > 1 else 30.0
        size_y = (north - south) / (rows - 1) if rows > 1 else 30.0
        notes = [f"PRISMA: {size_x:g} x {size_y:g} m pixels from the product's corner coordinates."]
        return (west - size_x / 2, size_x, 0.0, north + size_y / 2, 0.0, -size_y), notes

    def read_rows(self, first_row, row_count):
        numbers = {region: cube.read(first_row, row_count) for region, cube in self.cubes.items()}
        # Fill is 0 in every band of both cubes.
        valid_hw = np.zeros(next(iter(numbers.values())).shape[1:], dtype=bool)
        for cube_bhw in numbers.values():
            valid_hw |= (cube_bhw != 0).any(axis=0)
        cube_bhw = np.empty((len(self._bands),) + valid_hw.shape, dtype=np.float32)
        for output_index, (region, index) in enumerate(self._bands):
            low, step = self._scale[region]
            cube_bhw[output_index] = low + numbers[region][index] * step
        return cube_bhw, valid_hw

    def close(self):
        self._dataset = None
