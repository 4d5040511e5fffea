"""The import (``products.writer``): a cancelled import leaves no file."""
import os

import pytest

from fers_qgis.core import products
from fers_qgis.core.errors import Cancelled
from fers_qgis.core.progress import Progress
from tests.product_files import write_emit_l2a

pytest.importorskip("netCDF4", reason="building the NetCDF test products needs netCDF4 (Debian python3-netcdf4)")
pytest.importorskip("h5py", reason="building the HDF5 test products needs h5py (Debian python3-h5py)")


def test_a_cancelled_import_leaves_no_file(tmp_path, monkeypatch):
    granule = write_emit_l2a(tmp_path)
    monkeypatch.setattr(products.reader, "BLOCK_BYTES", 10 * 12 * 4 * 3)

    class CancelAfterFirstBlock(Progress):
        blocks = 0

        def set_fraction(self, fraction):
            self.blocks += 1

        def is_cancelled(self):
            return self.blocks >= 1

    with pytest.raises(Cancelled):
        products.import_product(granule.path, str(tmp_path / "emit.tif"), CancelAfterFirstBlock())
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(granule.path)]
