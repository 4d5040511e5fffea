"""The core's matrix products: numpy's results, on numpy's own BLAS even where QGIS puts GSL's reference CBLAS first."""
import ctypes
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fers_qgis.core import linalg
from fers_qgis.core.detection import RxOptions, detect_rx
from fers_qgis.core.spectral import band_matrix, to_model_bands
from tests.helpers import read_raster, write_raster

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What Debian's qgis.bin and qgis_process.bin link ahead of OpenBLAS.
GSL_CBLAS = "/usr/lib/x86_64-linux-gnu/libgslcblas.so.0"


def run_python(script: str, **environment) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], cwd=REPOSITORY, capture_output=True, text=True,
                          env={**os.environ, **environment}, timeout=120)


class CountingCblas(linalg._Cblas):
    """numpy's own CBLAS through ctypes, as inside QGIS, counting the calls."""

    def __init__(self):
        super().__init__(ctypes.CDLL(linalg._numpy_module_file()))
        self.calls = 0

    def matmul(self, a, b):
        self.calls += 1
        return super().matmul(a, b)

    def gram(self, a):
        self.calls += 1
        return super().gram(a)


@pytest.fixture
def cblas(monkeypatch):
    """Force the ctypes path in this process (numpy's own library, so only the calling code differs)."""
    counting = CountingCblas()
    monkeypatch.setattr(linalg, "_CBLAS", counting)
    return counting


def layouts(matrix):
    """The same values row-major, column-major, strided (neither) and as float32."""
    strided = np.zeros((matrix.shape[0], 2 * matrix.shape[1]))[:, ::2]
    strided[:] = matrix
    return [np.ascontiguousarray(matrix), np.asfortranarray(matrix), strided, matrix.astype(np.float32)]


def test_ctypes_products_equal_numpys_in_every_layout(cblas):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(57, 13)), rng.normal(size=(13, 5))
    for left in layouts(a):
        for right in layouts(b):
            expected = left.astype(np.float64) @ right.astype(np.float64)
            np.testing.assert_allclose(linalg.matmul(left, right), expected, rtol=1e-12, atol=1e-12)
        expected = left.astype(np.float64).T @ left.astype(np.float64)
        gram = linalg.gram(left)
        np.testing.assert_allclose(gram, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(gram, gram.T)
    stack = rng.normal(size=(4, 6, 9))
    np.testing.assert_allclose(linalg.matmul(stack, stack.transpose(0, 2, 1)), stack @ stack.transpose(0, 2, 1),
                               rtol=1e-12, atol=1e-12)
    assert cblas.calls > 0
    with pytest.raises(ValueError):
        linalg.matmul(a, a)  # shapes that do not match raise numpy's error, never reach BLAS


def test_rx_and_band_resampling_run_their_products_through_the_helper(cblas, tmp_path, monkeypatch):
    """Global RX (statistics and scores), local RX's whitening and band resampling give today's results."""
    rng = np.random.default_rng(1)
    cube_bhw = np.einsum("cd,dhw->chw", rng.normal(size=(16, 16)), rng.gamma(2.0, size=(16, 23, 19)))
    path = str(tmp_path / "cube.tif")
    write_raster(path, cube_bhw)
    for detector in ("global", "local"):
        options = RxOptions(detector=detector, inner_window=3, outer_window=9)
        monkeypatch.setattr(linalg, "_CBLAS", None)
        detect_rx(path, str(tmp_path / f"numpy_{detector}.tif"), options)
        monkeypatch.setattr(linalg, "_CBLAS", cblas)
        calls = cblas.calls
        detect_rx(path, str(tmp_path / f"cblas_{detector}.tif"), options)
        assert cblas.calls > calls, detector
        np.testing.assert_allclose(read_raster(str(tmp_path / f"cblas_{detector}.tif")).cube_bhw,
                                   read_raster(str(tmp_path / f"numpy_{detector}.tif")).cube_bhw, rtol=1e-10)
    matrix = band_matrix(16, 7, "resample")
    calls = cblas.calls
    np.testing.assert_allclose(to_model_bands(cube_bhw, matrix), np.tensordot(matrix, cube_bhw, axes=(1, 0)),
                               rtol=1e-12)
    assert cblas.calls == calls + 1


def test_plain_python_keeps_numpys_products():
    completed = run_python("from fers_qgis.core import linalg; print(linalg.backend())", LD_PRELOAD="")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "numpy"


@pytest.mark.skipif(not os.path.exists(GSL_CBLAS), reason=f"{GSL_CBLAS} is not installed (Debian: libgslcblas0)")
def test_with_gsl_cblas_first_the_core_bypasses_it():
    """What qgis_process.bin does, reproduced with LD_PRELOAD: numpy's @ lands in GSL's reference loops, the
    core's products in numpy's own BLAS, with the same values."""
    script = textwrap.dedent("""
        import ctypes
        import numpy as np
        from fers_qgis.core import linalg, rx

        class Where(ctypes.Structure):
            _fields_ = [("file", ctypes.c_char_p), ("base", ctypes.c_void_p), ("name", ctypes.c_char_p),
                        ("address", ctypes.c_void_p)]

        def library_of(function):
            where = Where()
            ctypes.CDLL(None).dladdr(ctypes.cast(function, ctypes.c_void_p), ctypes.byref(where))
            return where.file.decode()

        assert "gslcblas" in library_of(ctypes.CDLL(None).cblas_dgemm), "LD_PRELOAD did not put GSL first"
        assert linalg.backend() == "cblas", linalg.backend()
        assert "gslcblas" not in library_of(linalg._CBLAS._dgemm)
        assert "gslcblas" not in library_of(linalg._CBLAS._dsyrk)
        rng = np.random.default_rng(0)
        pixels = rng.normal(size=(3000, 40))
        statistics = rx.BackgroundStatistics(40)
        statistics.add(pixels)
        whitening = rx.whitening_matrix(statistics.covariance)
        centred = pixels - pixels.mean(axis=0)
        expected_covariance = np.einsum("nc,nd->cd", centred, centred) / 2999
        np.testing.assert_allclose(statistics.covariance, expected_covariance, rtol=1e-10, atol=1e-13)
        expected_scores = np.einsum("nc,ck->nk", centred, whitening)
        np.testing.assert_allclose(rx.rx_scores(pixels, statistics.mean, whitening),
                                   (expected_scores ** 2).sum(axis=1), rtol=1e-10)
    """)
    completed = run_python(script, LD_PRELOAD=GSL_CBLAS)
    assert completed.returncode == 0, completed.stderr
