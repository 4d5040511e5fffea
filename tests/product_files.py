"""Small sensor products written with the structure of each product's published format, for the import tests.

No real granule can be downloaded here, so each builder writes what the format specification names: variable and
group names, dimension order, attributes, fill values. The pixel values are chosen so that a test can tell exactly
which source pixel and band landed where. Builders need netCDF4 / h5py (Debian python3-netcdf4, python3-h5py).
"""
import os
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
from osgeo import gdal, osr

from tests.helpers import TEST_EPSG, TEST_GEOTRANSFORM

EMIT_FILL = -9999.0
EMIT_GEOTRANSFORM = (-117.5, 0.0005, 0.0, 35.2, 0.0, -0.0005)


@dataclass
class EmitGranule:
    """An EMIT L2A reflectance file and what its orthorectified output must be."""

    path: str
    swath_dcb: np.ndarray  # reflectance(downtrack, crosstrack, bands)
    glt_x: np.ndarray  # 1-based crosstrack index per map pixel, 0: none
    glt_y: np.ndarray  # 1-based downtrack index per map pixel, 0: none
    wavelengths: np.ndarray
    fwhm: np.ndarray
    good_wavelengths: np.ndarray

    def expected_bhw(self) -> np.ndarray:
        """The map-grid cube: each mapped pixel's swath spectrum, -9999 elsewhere."""
        height, width = self.glt_x.shape
        expected = np.full((self.swath_dcb.shape[2], height, width), EMIT_FILL, dtype=np.float32)
        mapped = (self.glt_x > 0) & (self.glt_y > 0)
        expected[:, mapped] = self.swath_dcb[self.glt_y[mapped] - 1, self.glt_x[mapped] - 1].T
        return expected


def write_emit_l2a(folder, downtrack=24, crosstrack=10, bands=12,
                   name="EMIT_L2A_RFL_001_20230101T000000_2300100_001.nc", swath_dcb=None, angle_degrees=30.0,
                   bad_bands=(5, 6, -1)) -> EmitGranule:
    """EMIT L2A RFL as in the EMIT L2A product user guide: root variable reflectance(downtrack, crosstrack, bands)
    float32 with _FillValue -9999; group sensor_band_parameters with wavelengths, fwhm (nm) and good_wavelengths
    (bands); group location with lat, lon (downtrack, crosstrack) and glt_x, glt_y (ortho_y, ortho_x) int32, 1-based,
    0 for map pixels with no swath pixel; global attributes geotransform (6 doubles) and spatial_ref (WKT).
    ``swath_dcb`` (downtrack, crosstrack, bands) replaces the random swath; the swath lies on the map grid rotated by
    ``angle_degrees``; ``bad_bands`` (0-based) are flagged in good_wavelengths."""
    import netCDF4

    if swath_dcb is None:
        rng = np.random.default_rng(12)
        swath_dcb = rng.uniform(0.01, 0.6, (downtrack, crosstrack, bands)).astype(np.float32)
        swath_dcb[3, 4, :] = EMIT_FILL  # a fill pixel inside the swath
    downtrack, crosstrack, bands = swath_dcb.shape
    # The swath rotated on a map grid that holds it: each map pixel takes the nearest swath pixel.
    angle = np.deg2rad(angle_degrees)
    height = int(np.ceil(downtrack * abs(np.cos(angle)) + crosstrack * abs(np.sin(angle)))) + 6
    width = int(np.ceil(downtrack * abs(np.sin(angle)) + crosstrack * abs(np.cos(angle)))) + 6
    rows, columns = np.mgrid[0:height, 0:width].astype(float)
    centre_r, centre_c = (height - 1) / 2, (width - 1) / 2
    along = np.cos(angle) * (rows - centre_r) + np.sin(angle) * (columns - centre_c) + (downtrack - 1) / 2
    across = -np.sin(angle) * (rows - centre_r) + np.cos(angle) * (columns - centre_c) + (crosstrack - 1) / 2
    line, sample = np.rint(along).astype(int), np.rint(across).astype(int)
    inside = (line >= 0) & (line < downtrack) & (sample >= 0) & (sample < crosstrack)
    # lat / lon of each swath pixel's centre: the same rotation undone, on the map grid's pixel centres.
    lines, samples = np.mgrid[0:downtrack, 0:crosstrack].astype(float)
    shifted_along, shifted_across = lines - (downtrack - 1) / 2, samples - (crosstrack - 1) / 2
    map_row = np.cos(angle) * shifted_along - np.sin(angle) * shifted_across + centre_r
    map_column = np.sin(angle) * shifted_along + np.cos(angle) * shifted_across + centre_c
    lon = EMIT_GEOTRANSFORM[0] + (map_column + 0.5) * EMIT_GEOTRANSFORM[1]
    lat = EMIT_GEOTRANSFORM[3] + (map_row + 0.5) * EMIT_GEOTRANSFORM[5]
    glt_y = np.where(inside, line + 1, 0).astype(np.int32)
    glt_x = np.where(inside, sample + 1, 0).astype(np.int32)
    wavelengths = np.linspace(381.0, 2493.0, bands).astype(np.float32)
    fwhm = np.full(bands, 8.5, dtype=np.float32)
    good = np.ones(bands, dtype=np.uint8)
    good[list(bad_bands)] = 0  # by default water vapour bands and the last band, as EMIT flags them

    path = os.path.join(str(folder), name)
    dataset = netCDF4.Dataset(path, "w", format="NETCDF4")
    dataset.ncei_template_version = "NCEI_NetCDF_Swath_Template_v2.0"
    dataset.title = "EMIT L2A Estimated Surface Reflectance 60 m V001"
    dataset.geotransform = np.array(EMIT_GEOTRANSFORM, dtype=np.float64)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    dataset.spatial_ref = srs.ExportToWkt()
    dataset.spatialResolution = 0.000542232520256367
    for dimension, size in (("downtrack", downtrack), ("crosstrack", crosstrack), ("bands", bands),
                            ("ortho_y", height), ("ortho_x", width)):
        dataset.createDimension(dimension, size)
    reflectance = dataset.createVariable("reflectance", "f4", ("downtrack", "crosstrack", "bands"),
                                         fill_value=EMIT_FILL)
    reflectance.long_name = "Surface Reflectance"
    reflectance.units = "unitless"
    reflectance[:] = swath_dcb
    parameters = dataset.createGroup("sensor_band_parameters")
    for variable, values, units in (("wavelengths", wavelengths, "nm"), ("fwhm", fwhm, "nm"),
                                    ("good_wavelengths", good, "unitless")):
        created = parameters.createVariable(variable, values.dtype, ("bands",))
        created.units = units
        created[:] = values
    location = dataset.createGroup("location")
    for variable, values in (("lat", lat), ("lon", lon)):
        created = location.createVariable(variable, "f8", ("downtrack", "crosstrack"), fill_value=-9999.0)
        created[:] = values
    for variable, values in (("glt_x", glt_x), ("glt_y", glt_y)):
        created = location.createVariable(variable, "i4", ("ortho_y", "ortho_x"), fill_value=0)
        created[:] = values
    dataset.close()
    return EmitGranule(path, swath_dcb, glt_x, glt_y, wavelengths, fwhm, good)


def write_netcdf_cube(path, cube, dimensions: Tuple[str, str, str], variable="reflectance", wavelengths=None) -> str:
    """A NetCDF file with one 3-D variable (fill -9999) and optionally a wavelengths variable on its 3rd dim."""
    import netCDF4

    dataset = netCDF4.Dataset(str(path), "w", format="NETCDF4")
    for dimension, size in zip(dimensions, cube.shape):
        dataset.createDimension(dimension, size)
    created = dataset.createVariable(variable, "f4", dimensions, fill_value=EMIT_FILL)
    created[:] = cube
    if wavelengths is not None:
        values = dataset.createVariable("wavelengths", "f4", (dimensions[2],))
        values.units = "nm"
        values[:] = wavelengths
    dataset.close()
    return str(path)


def write_cf_cube(path, cube_bhw, order: Sequence[str], north_up=True, lon_lat=False, named=True,
                  variable="reflectance") -> str:
    """A CF NetCDF cube as xarray's to_netcdf and L2 processors write it: ``cube_bhw`` stored in ``order`` (a
    permutation of "band", "y", "x"), with coordinate variables wavelength (nm), y and x (CF axis and
    standard_name; pixel centres of TEST_GEOTRANSFORM's grid, y ascending unless ``north_up``) and a grid mapping
    (EPSG:TEST_EPSG); ``lon_lat`` names them lat / lon on a WGS 84 grid; ``named=False`` names the dimensions
    d0, d1, d2 without coordinate variables."""
    import netCDF4

    bands, rows, columns = cube_bhw.shape
    x0, dx, _, y0, _, dy = (12.0, 1e-3, 0, 45.0, 0, -1e-3) if lon_lat else TEST_GEOTRANSFORM
    y_values = y0 + dy * (np.arange(rows) + 0.5)
    coordinates = {"band": ("wavelength", 400.0 + 10 * np.arange(bands)),
                   "y": ("lat" if lon_lat else "y", y_values if north_up else y_values[::-1]),
                   "x": ("lon" if lon_lat else "x", x0 + dx * (np.arange(columns) + 0.5))}
    stored_bhw = cube_bhw if north_up else cube_bhw[:, ::-1]
    stored = np.transpose(stored_bhw, [["band", "y", "x"].index(axis) for axis in order])
    dataset = netCDF4.Dataset(str(path), "w", format="NETCDF4")
    names = [coordinates[axis][0] if named else f"d{index}" for index, axis in enumerate(order)]
    for name, size in zip(names, stored.shape):
        dataset.createDimension(name, size)
    if named:
        for axis, (name, values) in coordinates.items():
            created = dataset.createVariable(name, "f8", (name,))
            created[:] = values
            if axis == "band":
                created.units, created.standard_name = "nm", "radiation_wavelength"
            else:
                created.axis = axis.upper()
                created.standard_name = {"x": "longitude", "y": "latitude"}[axis] if lon_lat else \
                    f"projection_{axis}_coordinate"
                created.units = ("degrees_east" if axis == "x" else "degrees_north") if lon_lat else "m"
    cube = dataset.createVariable(variable, "f4", names, fill_value=EMIT_FILL)
    cube[:] = stored
    if named and not lon_lat:
        reference = osr.SpatialReference()
        reference.ImportFromEPSG(TEST_EPSG)
        mapping = dataset.createVariable("spatial_ref", "i4")
        mapping.crs_wkt = mapping.spatial_ref = reference.ExportToWkt()
        mapping.grid_mapping_name = "transverse_mercator"
        cube.grid_mapping = "spatial_ref"
    dataset.close()
    return str(path)


def gdal_reads_lines_as_bands(folder) -> bool:
    """Whether this GDAL reads reflectance(downtrack, crosstrack, bands) with the image lines as bands, the reading
    the plugin must refuse: GDAL 3.6 (QGIS 3.22) does, GDAL 3.10 (QGIS 3.40) finds the band axis itself."""
    path = write_netcdf_cube(os.path.join(folder, "probe.nc"), np.ones((30, 12, 6), np.float32),
                             ("downtrack", "crosstrack", "bands"))
    return gdal.Open(path).RasterCount == 30


@dataclass
class PrismaProduct:
    path: str
    vnir_rbc: np.ndarray  # VNIR_Cube (rows, bands, columns) uint16
    swir_rbc: np.ndarray
    vnir_wavelengths: np.ndarray  # as stored: descending, 0 for unused bands
    swir_wavelengths: np.ndarray
    vnir_scale: Tuple[float, float]
    swir_scale: Tuple[float, float]
    upper_left: Tuple[float, float]  # centre of the upper-left pixel (easting, northing)
    pixel_size: float


EMIT_MASK_BANDS = ("Cloud flag", "Cirrus flag", "Water flag", "Spacecraft Flag", "Dilated Cloud Flag", "AOD550",
                   "H2O (g cm-2)", "Aggregate Flag")


def write_emit_l2a_mask(folder, granule: EmitGranule, named=True,
                        name="EMIT_L2A_MASK_001_20230101T000000_2300100_001.nc") -> Tuple[str, np.ndarray]:
    """The EMIT L2A mask file of ``granule``, as in the EMIT L2A product user guide: mask(downtrack, crosstrack,
    bands = 8) float32, fill -9999, its band names in sensor_band_parameters/mask_bands (left out when not
    ``named``), and the granule's location group (lat, lon, glt_x, glt_y) and global attributes. Returns (path,
    usable swath pixels: no flag in the aggregate band, and data)."""
    import netCDF4

    rng = np.random.default_rng(5)
    downtrack, crosstrack = granule.swath_dcb.shape[:2]
    mask = np.zeros((downtrack, crosstrack, len(EMIT_MASK_BANDS)), dtype=np.float32)
    mask[..., :5] = rng.random((downtrack, crosstrack, 5)) < 0.1
    mask[..., 7] = mask[..., [0, 1, 3, 4]].max(axis=2)  # aggregate: cloud, cirrus, spacecraft, dilated cloud
    mask[..., 5] = rng.uniform(0.05, 0.3, (downtrack, crosstrack))
    mask[..., 6] = rng.uniform(0.5, 3.0, (downtrack, crosstrack))
    mask[0, 0, :] = EMIT_FILL
    usable = (mask[..., 7] == 0) & (mask[..., 0] != EMIT_FILL)
    path = os.path.join(str(folder), name)
    source = netCDF4.Dataset(granule.path)
    dataset = netCDF4.Dataset(path, "w", format="NETCDF4")
    dataset.setncatts({key: source.getncattr(key) for key in source.ncattrs()})
    for dimension, size in (("downtrack", downtrack), ("crosstrack", crosstrack), ("bands", len(EMIT_MASK_BANDS)),
                            ("ortho_y", granule.glt_x.shape[0]), ("ortho_x", granule.glt_x.shape[1])):
        dataset.createDimension(dimension, size)
    variable = dataset.createVariable("mask", "f4", ("downtrack", "crosstrack", "bands"), fill_value=EMIT_FILL)
    variable[:] = mask
    if named:
        parameters = dataset.createGroup("sensor_band_parameters")
        names = parameters.createVariable("mask_bands", str, ("bands",))
        for index, band_name in enumerate(EMIT_MASK_BANDS):
            names[index] = band_name
    location = dataset.createGroup("location")
    for variable_name, values in source["location"].variables.items():
        created = location.createVariable(variable_name, values.dtype, values.dimensions,
                                          fill_value=values.getncattr("_FillValue"))
        created[:] = values[:]
    source.close()
    dataset.close()
    return path, usable


def write_prisma_l2d(folder, rows=9, columns=7, name="PRS_L2D_STD_20230407100729_20230407100733_0001.he5"
                     ) -> PrismaProduct:
    """PRISMA L2D as in the PRISMA Products Specification: HDF-EOS5 swath PRS_L2D_HCO with Data Fields VNIR_Cube
    and SWIR_Cube, uint16 (rows, bands, columns); global attributes L2ScaleVnirMin/Max, L2ScaleSwirMin/Max
    (reflectance = min + DN (max - min) / 65535), List_Cw_Vnir / List_Cw_Swir and List_Fwhm_* in descending
    wavelength order with 0 for unused bands, List_Cw_*_Flags, Epsg_Code and the product corner coordinates."""
    import h5py

    rng = np.random.default_rng(7)
    vnir_wavelengths = np.array([0.0, 1010.0, 960.0, 700.0, 550.0, 402.0], dtype=np.float32)
    swir_wavelengths = np.array([2497.0, 2100.0, 1600.0, 1200.0, 940.0, 0.0], dtype=np.float32)
    vnir = rng.integers(1000, 60000, (rows, len(vnir_wavelengths), columns)).astype(np.uint16)
    swir = rng.integers(1000, 60000, (rows, len(swir_wavelengths), columns)).astype(np.uint16)
    vnir[0, :, 0] = 0  # fill corner: 0 in every band of both cubes
    swir[0, :, 0] = 0
    swir[:, 0, :] = 0  # a dead band: 0 everywhere (the 2497 nm band)
    upper_left, pixel_size = (355000.0 + 15.0, 4985000.0 - 15.0), 30.0
    path = os.path.join(str(folder), name)
    with h5py.File(path, "w") as product:
        product.attrs["Product_ID"] = np.bytes_("PRS_L2D_STD")
        product.attrs["Processing_Level"] = np.bytes_("2D")
        product.attrs["Epsg_Code"] = np.int32(32633)
        product.attrs["Product_ULcorner_easting"] = np.float64(upper_left[0])
        product.attrs["Product_ULcorner_northing"] = np.float64(upper_left[1])
        product.attrs["Product_LRcorner_easting"] = np.float64(upper_left[0] + (columns - 1) * pixel_size)
        product.attrs["Product_LRcorner_northing"] = np.float64(upper_left[1] - (rows - 1) * pixel_size)
        product.attrs["Product_LLcorner_easting"] = np.float64(upper_left[0])
        product.attrs["Product_LLcorner_northing"] = np.float64(upper_left[1] - (rows - 1) * pixel_size)
        product.attrs["Product_URcorner_easting"] = np.float64(upper_left[0] + (columns - 1) * pixel_size)
        product.attrs["Product_URcorner_northing"] = np.float64(upper_left[1])
        product.attrs["L2ScaleVnirMin"] = np.float32(0.0)
        product.attrs["L2ScaleVnirMax"] = np.float32(0.8)
        product.attrs["L2ScaleSwirMin"] = np.float32(0.0)
        product.attrs["L2ScaleSwirMax"] = np.float32(0.6)
        product.attrs["List_Cw_Vnir"] = vnir_wavelengths
        product.attrs["List_Fwhm_Vnir"] = np.where(vnir_wavelengths > 0, 12.0, 0.0).astype(np.float32)
        product.attrs["List_Cw_Vnir_Flags"] = (vnir_wavelengths > 0).astype(np.int8)
        product.attrs["List_Cw_Swir"] = swir_wavelengths
        product.attrs["List_Fwhm_Swir"] = np.where(swir_wavelengths > 0, 10.0, 0.0).astype(np.float32)
        product.attrs["List_Cw_Swir_Flags"] = (swir_wavelengths > 0).astype(np.int8)
        fields = product.create_group("HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields")
        fields.create_dataset("VNIR_Cube", data=vnir)
        fields.create_dataset("SWIR_Cube", data=swir)
        geolocation = product.create_group("HDFEOS/SWATHS/PRS_L2D_HCO/Geolocation Fields")
        geolocation.create_dataset("Latitude", data=np.full((rows, columns), 45.0, dtype=np.float32))
        geolocation.create_dataset("Longitude", data=np.full((rows, columns), 12.0, dtype=np.float32))
    return PrismaProduct(path, vnir, swir, vnir_wavelengths, swir_wavelengths, (0.0, 0.8), (0.0, 0.6), upper_left,
                         pixel_size)


ENMAP_NAME = "ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z"
ENMAP_NODATA = -32768
ENMAP_GEOTRANSFORM = (368000.0, 30.0, 0.0, 5808000.0, 0.0, -30.0)


@dataclass
class EnmapProduct:
    metadata_xml: str
    spectral_image: str
    numbers_bhw: np.ndarray
    wavelengths: np.ndarray
    gains: np.ndarray
    offsets: np.ndarray
    dead_band: int  # 0-based band holding only nodata


def write_enmap_l2a(folder, bands=8, rows=6, columns=5, image_format="GTiff") -> EnmapProduct:
    """EnMAP L2A as in the EnMAP HSI product specification: PRODUCT-SPECTRAL_IMAGE.TIF (int16, band-sequential
    reflectance numbers, nodata -32768, UTM) and PRODUCT-METADATA.XML with specific/bandCharacterisation/bandID
    (wavelengthCenterOfGravity, FWHMOfBand, GainOfBand, OffsetOfBand) and product/bandStatistics/bandID.
    ``image_format`` "ENVI": PRODUCT-SPECTRAL_IMAGE.BSQ with PRODUCT-SPECTRAL_IMAGE.HDR, the portal's other choice."""
    rng = np.random.default_rng(3)
    numbers = rng.integers(100, 9000, (bands, rows, columns)).astype(np.int16)
    numbers[:, -1, -1] = ENMAP_NODATA
    dead_band = 3
    numbers[dead_band] = ENMAP_NODATA
    wavelengths = np.linspace(418.24, 2445.53, bands)
    gains = np.full(bands, 1e-4)
    gains[1] = 2e-4
    offsets = np.zeros(bands)
    offsets[2] = -0.01
    envi = image_format == "ENVI"
    image = os.path.join(str(folder), f"{ENMAP_NAME}-SPECTRAL_IMAGE." + ("BSQ" if envi else "TIF"))
    dataset = gdal.GetDriverByName(image_format).Create(image, columns, rows, bands, gdal.GDT_Int16,
                                                        ["INTERLEAVE=BSQ" if envi else "INTERLEAVE=BAND"])
    dataset.SetGeoTransform(ENMAP_GEOTRANSFORM)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    dataset.SetProjection(srs.ExportToWkt())
    for index in range(bands):
        dataset.GetRasterBand(index + 1).SetNoDataValue(ENMAP_NODATA)
        dataset.GetRasterBand(index + 1).WriteArray(numbers[index])
    dataset = None
    if envi:  # GDAL writes NAME.hdr; the portal's header is NAME.HDR
        os.rename(image[:-4] + ".hdr", image[:-4] + ".HDR")
    characterisation = "".join(
        f'<bandID number="{index + 1}"><wavelengthCenterOfGravity>{wavelengths[index]:.2f}'
        f'</wavelengthCenterOfGravity><FWHMOfBand>{6.5 + index:.2f}</FWHMOfBand><GainOfBand>{gains[index]:g}'
        f'</GainOfBand><OffsetOfBand>{offsets[index]:g}</OffsetOfBand></bandID>' for index in range(bands))
    statistics = "".join(
        f'<bandID number="{index + 1}"><minimum>{-32768 if index == dead_band else 100}</minimum><maximum>'
        f'{-32768 if index == dead_band else 9000}</maximum><mean>{-32768 if index == dead_band else 4500}</mean>'
        f'<stdDeviation>{0 if index == dead_band else 2500}</stdDeviation></bandID>' for index in range(bands))
    metadata_xml = os.path.join(str(folder), f"{ENMAP_NAME}-METADATA.XML")
    with open(metadata_xml, "w", encoding="utf-8") as stream:
        stream.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<level_X><metadata><name>' + ENMAP_NAME + '</name></metadata>'
            '<specific><numberOfBands>' + str(bands) + '</numberOfBands><bandCharacterisation>' + characterisation
            + '</bandCharacterisation></specific><product><image><merge><name>' + ENMAP_NAME
            + '-SPECTRAL_IMAGE.TIF</name></merge></image><bandStatistics>' + statistics
            + '</bandStatistics></product></level_X>\n')
    return EnmapProduct(metadata_xml, image, numbers, wavelengths, gains, offsets, dead_band)


AVIRIS_GEOTRANSFORM = (412000.0, 5.0, 0.0, 3940000.0, 0.0, -5.0)


def write_aviris_envi(folder, bands=6, rows=5, columns=4, micrometres=False, declare_fill=True,
                      name="ang20190624t184540_rfl_v2v2_img"):
    """AVIRIS-NG / AVIRIS-3 L2 reflectance as ENVI: BIL float32 with a header giving wavelength (nm, or um for
    older deliveries), fwhm, bbl, data ignore value = -9999 and map info. Returns (data path, cube_bhw, bbl)."""
    rng = np.random.default_rng(5)
    cube = rng.uniform(0.0, 0.7, (bands, rows, columns)).astype(np.float32)
    cube[:, 0, 0] = -9999.0
    bbl = np.ones(bands, dtype=int)
    bbl[2] = 0
    path = os.path.join(str(folder), name)
    dataset = gdal.GetDriverByName("ENVI").Create(path, columns, rows, bands, gdal.GDT_Float32, ["INTERLEAVE=BIL"])
    dataset.SetGeoTransform(AVIRIS_GEOTRANSFORM)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32611)
    dataset.SetProjection(srs.ExportToWkt())
    for index in range(bands):
        dataset.GetRasterBand(index + 1).WriteArray(cube[index])
    dataset = None
    wavelengths_nm = np.linspace(377.0, 2500.0, bands)
    scale = 0.001 if micrometres else 1.0
    with open(path + ".hdr", "a", encoding="ascii") as header:
        header.write(f"wavelength units = {'Micrometers' if micrometres else 'Nanometers'}\n")
        header.write("wavelength = {" + ", ".join(f"{value * scale:.6f}" for value in wavelengths_nm) + "}\n")
        header.write("fwhm = {" + ", ".join(f"{5.0 * scale:.6f}" for _ in wavelengths_nm) + "}\n")
        header.write("bbl = {" + ", ".join(str(value) for value in bbl) + "}\n")
        if declare_fill:
            header.write("data ignore value = -9999\n")
    return path, cube, bbl, wavelengths_nm
