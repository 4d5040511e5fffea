"""EMIT L2A: the reflectance and the mask file, NetCDF swaths (downtrack, crosstrack, bands) with a geometry lookup
table (GLT) to their map grid.

GDAL 3.6 (Debian 12) does not orthorectify EMIT through its GLT (GDAL 3.8), so the swath is read through GDAL's
multidimensional API and the GLT is applied block by block in numpy; or the swath is written as recorded, placed
by ground control points from its lat / lon.
"""
import os
from typing import Optional, Tuple

import numpy as np
from osgeo import gdal

from ..errors import InputError
from . import reader
from .multidim import MultidimCube, read_attributes, wgs84_wkt
from .reader import (MAP_GRID, PRODUCT_FILL, SENSOR_GEOMETRY, ProductHeader, ProductReader, as_floats, band_ranges,
                     valid_pixels)

EMIT_L2A = "emit-l2a"
EMIT_L2A_MASK = "emit-l2a-mask"
# Ground control points of a sensor-geometry swath: about this many along each axis (plus the last line/sample).
GCPS_PER_AXIS = 12


class EmitSwath(ProductReader):
    """An EMIT L2A NetCDF variable VARIABLE(downtrack, crosstrack, bands), fill -9999, with lat / lon
    (downtrack, crosstrack) and 1-based glt_x / glt_y (0: no pixel) in group location, on the map grid of the
    global attributes geotransform and spatial_ref.

    Output grid: that map grid (MAP_GRID: each map pixel takes the swath pixel the GLT names, so about half of a
    rotated grid is fill and some swath pixels appear twice or not at all), or the swath as recorded
    (SENSOR_GEOMETRY: every pixel once, no fill, georeferenced by ground control points from lat / lon, which QGIS
    and every FERS output keep). The reflectance and the mask file of one granule share their GLT and lat / lon,
    so their imports line up pixel for pixel in either geometry."""

    kind = ""
    variable = ""

    def __init__(self, path: str, dataset, geometry: str = MAP_GRID):
        super().__init__(path)
        self._dataset = dataset
        self.geometry = geometry
        root = dataset.GetRootGroup()
        self.swath = MultidimCube(root.OpenMDArray(self.variable), band_axis=2)
        if self.swath.fill is None:
            self.swath.fill = PRODUCT_FILL
        location = root.OpenGroup("location")
        self._glt_x = location.OpenMDArray("glt_x")
        self._glt_y = location.OpenMDArray("glt_y")
        height, width = (dimension.GetSize() for dimension in self._glt_x.GetDimensions())
        attributes = read_attributes(root)
        parameters = root.OpenGroup("sensor_band_parameters") \
            if "sensor_band_parameters" in (root.GetGroupNames() or []) else None
        self._parameters = parameters
        self._parameter_names = (parameters.GetMDArrayNames() or []) if parameters is not None else []
        if geometry == SENSOR_GEOMETRY:
            gcps = _swath_gcps(location, path)
            self.grid = {"width": self.swath.columns, "height": self.swath.rows, "gcps": gcps,
                         "gcp_projection_wkt": wgs84_wkt()}
            self.geometry_note = (f"EMIT: the swath in sensor geometry, {self.swath.columns} x {self.swath.rows} "
                                  f"pixels as recorded (no fill, no repeated pixels), georeferenced by {len(gcps)} "
                                  f"ground control points from location/lat and lon.")
        else:
            if "geotransform" not in attributes:
                raise InputError(f"{os.path.basename(path)} has a GLT but no 'geotransform' attribute: the map "
                                 f"grid is unknown; import it in sensor geometry instead.")
            self.grid = {"width": width, "height": height,
                         "geotransform": tuple(as_floats(attributes["geotransform"])),
                         "projection_wkt": str(attributes.get("spatial_ref", ""))}
            self.geometry_note = (f"EMIT: orthorectified {self.swath.rows} x {self.swath.columns} swath pixels onto "
                                  f"the product's {width} x {height} map grid with its geometry lookup table.")

    def band_parameter(self, name: str) -> Optional[list]:
        """A 1-D variable of group sensor_band_parameters, or None."""
        if name not in self._parameter_names:
            return None
        array = self._parameters.OpenMDArray(name)
        if array.GetDataType().GetClass() == gdal.GEDTC_STRING:
            return list(array.Read())  # strings: GDAL's numpy reader takes numbers only
        return list(np.atleast_1d(array.ReadAsArray()))

    def read_rows(self, first_row, row_count):
        if self.geometry == SENSOR_GEOMETRY:
            cube_bhw = self.swath.read(first_row, row_count)
            return cube_bhw, valid_pixels(cube_bhw, self.swath.fill)
        width, bands = self.grid["width"], self.swath.bands
        glt_x = np.asarray(self._glt_x.ReadAsArray(array_start_idx=[first_row, 0], count=[row_count, width]),
                           dtype=np.int64)
        glt_y = np.asarray(self._glt_y.ReadAsArray(array_start_idx=[first_row, 0], count=[row_count, width]),
                           dtype=np.int64)
        mapped = (glt_x > 0) & (glt_y > 0)  # 0 (the GLT's fill) is "no swath pixel here"
        cube_hwb = np.full((row_count, width, bands), self.swath.fill, dtype=np.float32)
        if mapped.any():
            lines, columns = glt_y[mapped] - 1, glt_x[mapped] - 1
            first_column, last_column = int(columns.min()), int(columns.max())
            column_count = last_column - first_column + 1
            lines_per_read = max(1, reader.BLOCK_BYTES // max(1, column_count * bands * 4))
            targets = np.flatnonzero(mapped.ravel())
            flat_hwb = cube_hwb.reshape(-1, bands)
            for first_line in range(int(lines.min()), int(lines.max()) + 1, lines_per_read):
                wanted = (lines >= first_line) & (lines < first_line + lines_per_read)
                if not wanted.any():
                    continue
                line_count = min(lines_per_read, self.swath.rows - first_line)
                source_bhw = self.swath.read(first_line, line_count, first_column, column_count)
                flat_hwb[targets[wanted]] = source_bhw[:, lines[wanted] - first_line,
                                                       columns[wanted] - first_column].T
        cube_bhw = np.ascontiguousarray(cube_hwb.transpose(2, 0, 1))
        return cube_bhw, mapped & valid_pixels(cube_bhw, self.swath.fill)

    def close(self):
        self._dataset = None


class EmitL2A(EmitSwath):
    """EMIT L2A reflectance: reflectance(downtrack, crosstrack, bands); wavelengths, fwhm and good_wavelengths in
    group sensor_band_parameters."""

    kind = EMIT_L2A
    name = "EMIT L2A reflectance (NetCDF with geometry lookup table)"
    variable = "reflectance"

    def __init__(self, path: str, dataset, geometry: str = MAP_GRID):
        super().__init__(path, dataset, geometry)
        bands = self.swath.bands
        wavelengths = self.band_parameter("wavelengths")
        if wavelengths is None or len(wavelengths) != bands:
            raise InputError(f"{os.path.basename(path)} has no sensor_band_parameters/wavelengths for its {bands} "
                             f"bands.")
        wavelengths = [float(value) for value in wavelengths]
        fwhm = [float(value) for value in self.band_parameter("fwhm") or []] or [None] * bands
        good = [value == 1 for value in (self.band_parameter("good_wavelengths") or [1] * bands)]
        notes = [self.geometry_note]
        if not all(good):
            notes.append(f"EMIT good_wavelengths marks {good.count(False)} bands as bad (bbl = 0): "
                         f"{band_ranges(good, wavelengths)}.")
        self.header = ProductHeader(kind=self.kind, wavelengths_nm=wavelengths, fwhm_nm=fwhm, good_bands=good,
                                    notes=notes, **self.grid)


class EmitL2AMask(EmitSwath):
    """EMIT L2A mask: mask(downtrack, crosstrack, bands) with six 0/1 flag bands (cloud, cirrus, water,
    spacecraft, dilated cloud, aggregate) and two data bands (AOD, water vapour), named in
    sensor_band_parameters/mask_bands. Imported as the valid-pixel mask the detection algorithms take: 1 where
    the aggregate flag (the union EMIT recommends excluding; water is not in it) leaves the pixel, 0 where it
    flags it or there is no data."""

    kind = EMIT_L2A_MASK
    name = "EMIT L2A mask (NetCDF with geometry lookup table), as a valid-pixel mask"
    variable = "mask"
    # The aggregate flag's 0-based band in the user guide's band order, for a file that names no band.
    AGGREGATE_BAND = 7

    def __init__(self, path: str, dataset, geometry: str = MAP_GRID):
        super().__init__(path, dataset, geometry)
        names = [str(name) for name in self.band_parameter("mask_bands") or []]
        aggregate = [index for index, name in enumerate(names) if "aggregate" in name.lower()]
        flags = [index for index, name in enumerate(names) if "flag" in name.lower()]
        if aggregate:
            self.flag_bands, used = tuple(aggregate), f"its aggregate flag ({names[aggregate[0]]})"
        elif flags:
            self.flag_bands, used = tuple(flags), "its flag bands (" + ", ".join(names[i] for i in flags) + ")"
        elif self.swath.bands == self.AGGREGATE_BAND + 1:
            self.flag_bands, used = (self.AGGREGATE_BAND,), f"band {self.AGGREGATE_BAND + 1} (EMIT's aggregate flag)"
        else:
            raise InputError(f"{os.path.basename(path)}: its {self.swath.bands} mask bands are not named "
                             f"(sensor_band_parameters/mask_bands): which one flags unusable pixels is unknown.")
        notes = [self.geometry_note, f"EMIT mask: a pixel is usable (1) unless {used} flags it or it holds no "
                                     f"data (0); give the result as the detection algorithms' valid-pixel mask."]
        self.header = ProductHeader(kind=self.kind, wavelengths_nm=[], fwhm_nm=[], good_bands=[], notes=notes,
                                    **self.grid)

    def usable(self, cube_bhw: np.ndarray, valid_hw: np.ndarray) -> np.ndarray:
        """usable_hw (bool) of rows read by read_rows: data, and no flag band set."""
        flagged_hw = (cube_bhw[list(self.flag_bands)] == 1).any(axis=0)
        return valid_hw & ~flagged_hw


def _swath_gcps(location, path: str) -> Tuple[gdal.GCP, ...]:
    """Ground control points of a swath at the centres of a regular grid of its pixels (GCPS_PER_AXIS along each
    axis, the last line and sample included), from the location group's lat / lon (fill and NaN skipped)."""
    if not {"lat", "lon"} <= set(location.GetMDArrayNames() or []):
        raise InputError(f"{os.path.basename(path)} has no location/lat and lon: its swath cannot be georeferenced "
                         f"in sensor geometry; import it on its map grid.")
    latitude, longitude = (location.OpenMDArray(name) for name in ("lat", "lon"))
    rows, columns = (dimension.GetSize() for dimension in latitude.GetDimensions())
    lines = sorted(set(range(0, rows, max(1, rows // GCPS_PER_AXIS))) | {rows - 1})
    samples = sorted(set(range(0, columns, max(1, columns // GCPS_PER_AXIS))) | {columns - 1})
    gcps = []
    for line in lines:
        lat_row, lon_row = (np.asarray(array.ReadAsArray(array_start_idx=[line, 0], count=[1, columns]),
                                       dtype=np.float64)[0] for array in (latitude, longitude))
        for sample in samples:
            lat, lon = lat_row[sample], lon_row[sample]
            if np.isfinite(lat) and np.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 360:
                gcps.append(gdal.GCP(float(lon), float(lat), 0.0, sample + 0.5, line + 0.5))
    if len(gcps) < 3:
        raise InputError(f"{os.path.basename(path)}: location/lat and lon hold fewer than 3 usable positions: its "
                         f"swath cannot be georeferenced in sensor geometry; import it on its map grid.")
    return tuple(gcps)
