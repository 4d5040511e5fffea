"""NetCDF and HDF5 through GDAL's multidimensional API, the helpers the EMIT, PRISMA and CF cube readers share.

GDAL 3.6 (Debian 12) neither orthorectifies EMIT through its GLT (GDAL 3.8) nor georeferences HDF-EOS5 (GDAL 3.7),
so NetCDF and HDF5 are read here through GDAL's multidimensional API (GDAL >= 3.1, no extra Python package):
arrays and attributes by name (``find_array``, ``read_attributes``), a 3-D array read as (bands, rows, columns)
whatever its stored axis order (``MultidimCube``), which dimension of a cube holds the bands, x and y
(``cube_axes``), and how its coordinate variables place it on a map (``CoordinateGrid``).
"""
import os
import re
from typing import Dict, Optional, Tuple

import numpy as np
from osgeo import osr

from ..errors import InputError
from ..raster import stated_nanometres_per_unit

# Dimension names that say "spectral axis", "x axis" (image columns) and "y axis" (image rows).
_BAND_DIMENSIONS = re.compile(r"^(bands?|wavelengths?|spectral.*|channels?|wl|lambda|nbands?)$", re.IGNORECASE)
_X_DIMENSIONS = re.compile(r"^(x|lon|longitude|easting|columns?|cols?|samples?|cross_?track|across_?track|ortho_x)$",
                           re.IGNORECASE)
_Y_DIMENSIONS = re.compile(r"^(y|lat|latitude|northing|rows?|lines?|down_?track|along_?track|ortho_y)$",
                           re.IGNORECASE)
# CF standard names of a coordinate variable that say which axis it is.
_STANDARD_NAME_AXES = {"radiation_wavelength": "band", "sensor_band_identifier": "band",
                       "radiation_frequency": "band", "projection_x_coordinate": "x", "longitude": "x",
                       "grid_longitude": "x", "projection_y_coordinate": "y", "latitude": "y",
                       "grid_latitude": "y"}
BAND, X, Y = "band", "x", "y"
# Names of dimensions along map coordinates (not image lines or samples, whose coordinates would be indices).
_MAP_DIMENSIONS = re.compile(r"^(x|y|lon|lat|longitude|latitude|easting|northing)$", re.IGNORECASE)


def find_array(root, full_name: str):
    """The array at ``full_name``, or None (called with GDAL errors as exceptions)."""
    try:
        return root.OpenMDArrayFromFullname(full_name)
    except RuntimeError:
        return None


def read_attributes(node) -> Dict[str, object]:
    """Attributes of a group or array as Python values (numbers, strings, tuples)."""
    return {attribute.GetName(): attribute.Read() for attribute in (node.GetAttributes() or [])}


class MultidimCube:
    """A 3-D NetCDF/HDF5 array read as (bands, rows, columns), whatever its stored axis order; ``row_axis`` (else
    the first axis after the bands) is read as the rows, optionally reversed (a south-up grid read north up), and
    likewise the columns."""

    def __init__(self, array, band_axis: int, row_axis: Optional[int] = None, flip_rows: bool = False,
                 flip_columns: bool = False):
        self.array = array
        self.band_axis = band_axis
        sizes = [dimension.GetSize() for dimension in array.GetDimensions()]
        spatial_axes = [axis for axis in range(3) if axis != band_axis]
        if row_axis is not None:
            spatial_axes.sort(key=lambda axis: axis != row_axis)
        self.spatial_axes = spatial_axes
        self.flips = (flip_rows, flip_columns)
        self.bands = sizes[band_axis]
        self.rows, self.columns = (sizes[axis] for axis in self.spatial_axes)
        fill = array.GetNoDataValueAsDouble()
        if fill is None:
            fill = read_attributes(array).get("_FillValue")
        self.fill = None if fill is None else float(np.atleast_1d(fill)[0])

    def read(self, first_row: int, row_count: int, first_column: int = 0, column_count: Optional[int] = None
             ) -> np.ndarray:
        """cube_bhw (float32) for the given rows and columns, all bands."""
        column_count = self.columns - first_column if column_count is None else column_count
        start, count = [0, 0, 0], [self.bands] * 3
        for axis, first, number, size, flip in zip(self.spatial_axes, (first_row, first_column),
                                                   (row_count, column_count), (self.rows, self.columns),
                                                   self.flips):
            start[axis], count[axis] = (size - first - number if flip else first), number
        values = np.asarray(self.array.ReadAsArray(array_start_idx=start, count=count))
        cube_bhw = values.transpose([self.band_axis] + self.spatial_axes)
        if self.flips[0]:
            cube_bhw = cube_bhw[:, ::-1]
        if self.flips[1]:
            cube_bhw = cube_bhw[:, :, ::-1]
        return np.ascontiguousarray(cube_bhw, dtype=np.float32)


def _dimension_axis(dimension) -> Optional[str]:
    """BAND, X or Y for a dimension of a cube: what its coordinate variable says (CF ``axis`` and
    ``standard_name``, read by GDAL as the dimension's type; wavelength units), else its name; None when neither
    says."""
    kind = dimension.GetType()
    if kind in ("HORIZONTAL_X", "HORIZONTAL_Y"):
        return X if kind == "HORIZONTAL_X" else Y
    coordinate = dimension.GetIndexingVariable()
    if coordinate is not None:
        attributes = read_attributes(coordinate)
        said = _STANDARD_NAME_AXES.get(str(attributes.get("standard_name", "")).lower()) or \
            {"X": X, "Y": Y}.get(str(attributes.get("axis", "")).upper())
        if said:
            return said
        if stated_nanometres_per_unit(coordinate.GetUnit() or str(attributes.get("units", ""))) is not None:
            return BAND
    name = dimension.GetName().split("/")[-1]
    for axis, pattern in ((BAND, _BAND_DIMENSIONS), (X, _X_DIMENSIONS), (Y, _Y_DIMENSIONS)):
        if pattern.match(name):
            return axis
    return None


def cube_axes(array, name: str, path: str) -> Tuple[int, int, int, str]:
    """(band, row, column) axes of a 3-D variable and a note on how they were decided, from what its dimensions
    say; the one dimension left when the other two are known takes the third role. Two dimensions that say
    nothing beside a band dimension are read in CF's order (rows before columns). InputError naming every
    dimension when no order can be decided."""
    dimensions = array.GetDimensions()
    names = [dimension.GetName().split("/")[-1] for dimension in dimensions]
    said = [_dimension_axis(dimension) for dimension in dimensions]
    reading = ", ".join(f"'{dimension}': {axis or 'says nothing'}" for dimension, axis in zip(names, said))
    refusal = (f"{os.path.basename(path)}: the dimensions of {name}({', '.join(names)}) do not decide which holds "
               f"the bands and which are x and y ({reading}), so which axis holds the bands is unknown; FERS "
               f"refuses to guess. Name the dimensions (band or wavelength, y or lat, x or lon) or give their "
               f"coordinate variables CF 'axis' / 'standard_name' attributes.")
    axes = {}
    for axis in (BAND, X, Y):
        claimed = [index for index, value in enumerate(said) if value == axis]
        if len(claimed) > 1:
            raise InputError(refusal)
        if claimed:
            axes[axis] = claimed[0]
    silent = [index for index, value in enumerate(said) if value is None]
    note = ""
    if len(silent) == 1 and len(axes) == 2:
        axes[next(axis for axis in (BAND, X, Y) if axis not in axes)] = silent[0]
    elif len(silent) == 2 and BAND in axes:
        axes[Y], axes[X] = silent
        note = " (no dimension says which is x and which is y: read in CF's order, rows before columns)"
    if len(axes) != 3:
        raise InputError(refusal)
    return axes[BAND], axes[Y], axes[X], note


class CoordinateGrid:
    """How a cube's x and y coordinate variables place it: whether rows (stored south to north) and columns
    (east to west) are reversed to write north up, and a geotransform (pixel centres at the coordinates) when
    both are 1-D and regularly spaced, with the CRS of the variable's grid mapping (WGS 84 for lon / lat)."""

    def __init__(self, array, x_dimension, y_dimension):
        self.flip_rows = self.flip_columns = False
        self.geotransform: Tuple[float, ...] = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
        self.projection_wkt = ""
        x_values, y_values = (self._values(dimension) for dimension in (x_dimension, y_dimension))
        if x_values is None or y_values is None:
            self.note = "no coordinate variables of x and y: written as stored, on a pixel grid."
            return
        self.flip_columns = bool(x_values[-1] < x_values[0])
        self.flip_rows = bool(y_values[-1] > y_values[0])
        order = "rows stored south to north are written north up; " if self.flip_rows else ""
        x_step, y_step = (self._step(values) for values in (x_values, y_values))
        if x_step is None or y_step is None:
            self.note = order + "its x / y coordinates are not regularly spaced: the output is on a pixel grid."
            return
        self.geotransform = (float(x_values.min()) - x_step / 2, x_step, 0.0,
                             float(y_values.max()) + y_step / 2, 0.0, -y_step)
        self.projection_wkt = self._crs_wkt(array, x_dimension, y_dimension)
        crs = "the CRS of its grid mapping" if self.projection_wkt else "no CRS (no grid mapping found)"
        if self.projection_wkt and self._is_lon_lat(x_dimension, y_dimension):
            crs = "WGS 84 (lon / lat)"
        self.note = order + f"georeferenced from its coordinate variables ({x_step:g} x {y_step:g} pixels, {crs})."

    @staticmethod
    def _values(dimension) -> Optional[np.ndarray]:
        """The dimension's 1-D map coordinate values when they are finite and strictly monotonic, else None."""
        coordinate = dimension.GetIndexingVariable()
        if coordinate is None or coordinate.GetDimensionCount() != 1:
            return None
        standard_name = str(read_attributes(coordinate).get("standard_name", "")).lower()
        if dimension.GetType() not in ("HORIZONTAL_X", "HORIZONTAL_Y") and standard_name not in _STANDARD_NAME_AXES \
                and not _MAP_DIMENSIONS.match(dimension.GetName().split("/")[-1]):
            return None
        values = np.asarray(coordinate.ReadAsArray(), dtype=np.float64)
        steps = np.diff(values)
        if values.size < 2 or not np.isfinite(values).all() or not ((steps > 0).all() or (steps < 0).all()):
            return None
        return values

    @staticmethod
    def _step(values: np.ndarray) -> Optional[float]:
        steps = np.abs(np.diff(values))
        return float(steps.mean()) if np.allclose(steps, steps.mean(), rtol=1e-3, atol=0) else None

    @staticmethod
    def _is_lon_lat(x_dimension, y_dimension) -> bool:
        names = {dimension.GetName().split("/")[-1].lower() for dimension in (x_dimension, y_dimension)}
        standard = {str(read_attributes(dimension.GetIndexingVariable()).get("standard_name", "")).lower()
                    for dimension in (x_dimension, y_dimension)}
        return names <= {"lon", "lat", "longitude", "latitude"} or standard == {"longitude", "latitude"}

    def _crs_wkt(self, array, x_dimension, y_dimension) -> str:
        reference = array.GetSpatialRef()
        if reference is not None:
            return reference.ExportToWkt()
        return wgs84_wkt() if self._is_lon_lat(x_dimension, y_dimension) else ""


def wgs84_wkt() -> str:
    """WGS 84 degrees: EMIT's lat / lon, and the lon / lat coordinates of a CF cube."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    return srs.ExportToWkt()
