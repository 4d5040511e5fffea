"""Giving freed memory back to the operating system between blocks.

Blocks allocate and free arrays of tens of megabytes, in numpy and inside onnxruntime. glibc's malloc raises its
mmap threshold after such frees and then serves large arrays from the heap, where freed space stays with the
process: resident memory creeps up block after block. ``malloc_trim`` hands the free pages back; it changes no
allocator setting, so QGIS and other plugins in the same process are unaffected.
"""
import ctypes
import ctypes.util
import sys


def _load_malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
        return None


_MALLOC_TRIM = _load_malloc_trim()


def release_free_memory() -> None:
    """Return freed heap pages to the system (glibc); a no-op elsewhere."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
