"""Matrix products that stay fast inside QGIS.

Debian's ``qgis.bin`` and ``qgis_process.bin`` link GSL's reference CBLAS (``libgslcblas``) ahead of OpenBLAS, so
the dynamic linker binds numpy's ``cblas_*`` calls to GSL's unoptimised loops: 10-30x slower products
(docs/BENCHMARKS.md). The library numpy was linked against is still loaded, so when another library's
``cblas_dgemm`` shadows numpy's own, the products here call numpy's own ``cblas_dgemm`` / ``cblas_dsyrk`` directly
through ctypes. Everywhere else (plain Python, Windows, whose DLLs bind each import to its library, numpy wheels
whose OpenBLAS symbols carry their own names) they are numpy's ``@``. Both give the same float64 results.
"""
import ctypes
import os
from typing import Optional

import numpy as np

ROW_MAJOR, NO_TRANSPOSE, TRANSPOSE, UPPER = 101, 111, 112, 121
CBLAS_INT_LIMIT = 2**31  # CBLAS takes sizes as C ints: larger matrices stay with numpy


def _function_address(library: ctypes.CDLL, name: str) -> Optional[int]:
    try:
        return ctypes.cast(getattr(library, name), ctypes.c_void_p).value
    except AttributeError:
        return None


def _numpy_module_file() -> str:
    try:
        from numpy._core import _multiarray_umath  # numpy 2
    except ImportError:
        from numpy.core import _multiarray_umath
    return _multiarray_umath.__file__


def shadowed_numpy_cblas() -> Optional[ctypes.CDLL]:
    """numpy's own BLAS library when a different ``cblas_dgemm`` comes first in this process's symbol scope, else None.

    Looking a symbol up through numpy's module handle searches that module's own dependencies (the library numpy
    was linked against); looking it up in the process (``CDLL(None)``) finds what the dynamic linker binds first.
    """
    if os.name != "posix":
        return None
    own = ctypes.CDLL(_numpy_module_file())  # already loaded: the same handle, nothing is loaded again
    own_dgemm = _function_address(own, "cblas_dgemm")
    process_dgemm = _function_address(ctypes.CDLL(None), "cblas_dgemm")
    if own_dgemm is None or process_dgemm is None or own_dgemm == process_dgemm:
        return None
    return own


class _Cblas:
    """Row-major float64 ``cblas_dgemm`` and ``cblas_dsyrk`` of one library, called through ctypes."""

    def __init__(self, library: ctypes.CDLL):
        integer, real, pointer = ctypes.c_int, ctypes.c_double, ctypes.c_void_p
        self._dgemm = library.cblas_dgemm
        self._dgemm.argtypes = [integer] * 6 + [real, pointer, integer, pointer, integer, real, pointer, integer]
        self._dgemm.restype = None
        self._dsyrk = library.cblas_dsyrk
        self._dsyrk.argtypes = [integer] * 5 + [real, pointer, integer, real, pointer, integer]
        self._dsyrk.restype = None

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, a_transpose, a_leading = _operand(a)
        b, b_transpose, b_leading = _operand(b)
        rows, inner, columns = a.shape[0], a.shape[1], b.shape[1]
        result = np.empty((rows, columns))
        self._dgemm(ROW_MAJOR, a_transpose, b_transpose, rows, columns, inner, 1.0, a.ctypes.data, a_leading,
                    b.ctypes.data, b_leading, 0.0, result.ctypes.data, max(1, columns))
        return result

    def gram(self, a: np.ndarray) -> np.ndarray:
        # C = A^T A is C = op(X) op(X)^T with X = A^T (no transpose) or X = A (transpose).
        a, a_transpose, a_leading = _operand(a)
        samples, channels = a.shape
        result = np.empty((channels, channels))
        syrk_transpose = TRANSPOSE if a_transpose == NO_TRANSPOSE else NO_TRANSPOSE
        self._dsyrk(ROW_MAJOR, UPPER, syrk_transpose, channels, samples, 1.0, a.ctypes.data, a_leading, 0.0,
                    result.ctypes.data, max(1, channels))
        lower = np.tril_indices(channels, -1)
        result[lower] = result.T[lower]  # dsyrk fills the upper triangle only
        return result


def _operand(matrix: np.ndarray):
    """(matrix, CBLAS transpose flag, leading dimension) describing a float64 matrix, copied only when its memory
    is neither row- nor column-major."""
    if matrix.flags.c_contiguous:
        return matrix, NO_TRANSPOSE, max(1, matrix.shape[1])
    if matrix.flags.f_contiguous:
        return matrix, TRANSPOSE, max(1, matrix.shape[0])
    return np.ascontiguousarray(matrix), NO_TRANSPOSE, max(1, matrix.shape[1])


def _choose_backend() -> Optional[_Cblas]:
    library = shadowed_numpy_cblas()
    return _Cblas(library) if library is not None else None


# None: numpy's own products are numpy's own BLAS. Decided once: the libraries of a process do not change.
_CBLAS = _choose_backend()


def backend() -> str:
    """Which products run: 'numpy' (numpy's ``@``) or 'cblas' (numpy's own BLAS called past a shadowing one)."""
    return "numpy" if _CBLAS is None else "cblas"


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for float matrices (2-D, or equally long stacks of them), as float64, on numpy's own BLAS."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if (_CBLAS is None or a.size == 0 or b.size == 0 or a.ndim not in (2, 3) or a.shape[:-2] != b.shape[:-2]
            or a.shape[-1] != b.shape[-2] or max(a.shape + b.shape) >= CBLAS_INT_LIMIT):
        return a @ b  # also the one that raises numpy's error for shapes that do not match
    if a.ndim == 3:
        return np.stack([_CBLAS.matmul(left, right) for left, right in zip(a, b)])
    return _CBLAS.matmul(a, b)


def gram(a: np.ndarray) -> np.ndarray:
    """``a.T @ a`` (symmetric, float64) of a float matrix (samples x channels), on numpy's own BLAS."""
    a = np.asarray(a, dtype=np.float64)
    if _CBLAS is None or a.size == 0 or a.ndim != 2 or max(a.shape) >= CBLAS_INT_LIMIT:
        return a.T @ a
    return _CBLAS.gram(a)
