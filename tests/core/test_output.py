"""Outputs are written whole or not at all."""
import os

import numpy as np
import pytest

from fers_qgis.core.output import RasterWriter
from fers_qgis.core.raster import describe_raster
from tests.helpers import write_raster


def test_writer_leaves_nothing_on_error_and_keeps_the_previous_file(tmp_path):
    info = describe_raster(write_raster(tmp_path / "in.tif", np.zeros((2, 4, 5), dtype=np.float32)))
    output = tmp_path / "out.tif"
    output.write_bytes(b"previous result")
    with pytest.raises(RuntimeError):
        with RasterWriter(str(output), info, ["score"]) as writer:
            writer.write(0, np.ones((1, 2, 5)), np.ones((2, 5), dtype=bool))
            raise RuntimeError("boom")
    assert output.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == ["in.tif", "out.tif"]
