"""Any NetCDF / HDF5 file with one reflectance cube, read along the axes its dimensions say (CF conventions)."""
import os
from typing import List, Optional

from ..errors import InputError
from ..raster import nanometres_per_unit, stated_nanometres_per_unit
from .multidim import CoordinateGrid, MultidimCube, cube_axes, read_attributes
from .reader import ProductHeader, ProductReader, as_floats, valid_pixels

NETCDF_CUBE = "netcdf-cube"


class NetcdfCube(ProductReader):
    """A NetCDF/HDF5 file with one obvious reflectance cube: the only 3-D variable, or one named reflectance, in
    any dimension order that its dimensions say (``cube_axes``): (band, y, x) as xarray and many L2 processors
    write it, (y, x, band), (band, x, y), ... Rows are written north up and the grid georeferenced from regularly
    spaced 1-D coordinate variables of x and y, with the CRS of the variable's grid mapping (WGS 84 for lon/lat)."""

    kind = NETCDF_CUBE
    name = "NetCDF / HDF5 reflectance cube"

    def __init__(self, path: str, dataset, variable: Optional[str] = None):
        super().__init__(path)
        self._dataset = dataset
        root = dataset.GetRootGroup()
        cubes = {}
        self._collect_cubes(root, "", cubes)
        name = self._choose(cubes, variable, path)
        array = cubes[name]
        dimensions = array.GetDimensions()
        names = [dimension.GetName().split("/")[-1] for dimension in dimensions]
        band_axis, row_axis, column_axis, order_note = cube_axes(array, name, path)
        grid = CoordinateGrid(array, dimensions[column_axis], dimensions[row_axis])
        self.cube = MultidimCube(array, band_axis, row_axis, grid.flip_rows, grid.flip_columns)
        wavelengths = self._band_coordinate(dimensions[band_axis]) or self._wavelengths(root, names[band_axis])
        notes = [f"Read {name}({', '.join(names)}) with bands along '{names[band_axis]}', rows along "
                 f"'{names[row_axis]}', columns along '{names[column_axis]}'{order_note}; {grid.note}"]
        if wavelengths is None:
            notes.append("No wavelengths found: bands are numbered 1, 2, ...")
            wavelengths = [float(index) for index in range(1, self.cube.bands + 1)]
        self.header = ProductHeader(kind=self.kind, width=self.cube.columns, height=self.cube.rows,
                                    wavelengths_nm=wavelengths, fwhm_nm=[None] * self.cube.bands,
                                    good_bands=[True] * self.cube.bands, geotransform=grid.geotransform,
                                    projection_wkt=grid.projection_wkt, notes=notes)

    @staticmethod
    def _band_coordinate(dimension) -> Optional[List[float]]:
        """The band dimension's coordinate variable as wavelengths in nm, when its units or name say so."""
        coordinate = dimension.GetIndexingVariable()
        if coordinate is None:
            return None
        units = coordinate.GetUnit() or str(read_attributes(coordinate).get("units", ""))
        if stated_nanometres_per_unit(units) is None and "wavelength" not in coordinate.GetName().lower():
            return None
        values = as_floats(coordinate.ReadAsArray())
        factor = nanometres_per_unit(values, "")  # by magnitude: files state "nm" for micrometre values too
        return [value * factor for value in values]

    def _collect_cubes(self, group, prefix: str, cubes: dict) -> None:
        for name in group.GetMDArrayNames() or []:
            array = group.OpenMDArray(name)
            if array.GetDimensionCount() == 3:
                cubes[f"{prefix}/{name}".lstrip("/")] = array
        for name in group.GetGroupNames() or []:
            self._collect_cubes(group.OpenGroup(name), f"{prefix}/{name}", cubes)

    @staticmethod
    def _choose(cubes: dict, variable: Optional[str], path: str) -> str:
        if variable:
            variable = variable.lstrip("/")
            if variable not in cubes:
                raise InputError(f"{os.path.basename(path)} has no 3-D variable {variable!r}; it has "
                                 f"{', '.join(cubes) or 'none'}.")
            return variable
        reflectance = [name for name in cubes if "reflectance" in name.split("/")[-1].lower()]
        if len(reflectance) == 1:
            return reflectance[0]
        if len(cubes) == 1:
            return next(iter(cubes))
        raise InputError(
            f"{os.path.basename(path)} has no single reflectance cube to import (3-D variables: "
            f"{', '.join(cubes) or 'none'}). Name the variable, as in NETCDF:\"{path}\":VARIABLE.")

    def _wavelengths(self, group, band_dimension: str) -> Optional[List[float]]:
        """A 1-D variable named wavelength(s) of the band dimension's size, anywhere in the file, in nm."""
        for name in group.GetMDArrayNames() or []:
            array = group.OpenMDArray(name)
            if "wavelength" in name.lower() and array.GetDimensionCount() == 1 and \
                    array.GetDimensions()[0].GetSize() == self.cube.bands:
                values = as_floats(array.ReadAsArray())
                factor = nanometres_per_unit(values, str(read_attributes(array).get("units", "")).lower())
                return [value * factor for value in values]
        for name in group.GetGroupNames() or []:
            found = self._wavelengths(group.OpenGroup(name), band_dimension)
            if found is not None:
                return found
        return None

    def read_rows(self, first_row, row_count):
        cube_bhw = self.cube.read(first_row, row_count)
        return cube_bhw, valid_pixels(cube_bhw, self.cube.fill)

    def close(self):
        self._dataset = None
