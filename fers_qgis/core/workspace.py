"""A job's temporary rasters: raw band-sequential float32 files (NaN where invalid) in a hidden folder next to the
output, deleted at the end, also on error or cancel.

Raw files rather than GeoTIFFs: GDAL copied pixel-interleaved 200-band windows pixel by pixel at about 170 MB/s
even from the page cache (docs/RESULTS.md); here a window of B bands is B plain reads or writes, B per row for a
window narrower than the raster. Plain reads, not memory maps: mapping each band's rows anew cost a page fault per
4 KiB and was slower, and a map kept open would count the whole file as the process's memory.
"""
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np

from .errors import InputError
from .raster import RasterInfo, WindowBuffer, block_windows, iter_blocks

FLOAT32 = np.dtype("<f4")
# A window narrower than the raster is one read or write per row and band: positioned I/O halves the calls.
_POSITIONED_IO = hasattr(os, "pwrite") and hasattr(os, "preadv")


def _temporary_error(path: str, error: OSError) -> InputError:
    return InputError(f"Cannot write temporary data next to the output ({path}): {error}")


@dataclass(frozen=True)
class RowPiece:
    """One file of a temporary raster: rows [first_row, first_row + rows), every column and band."""

    path: str
    first_row: int
    rows: int


@dataclass(frozen=True)
class RasterFile:
    """A finished temporary raster of ``bands`` float32 bands on a ``width`` x ``height`` grid, stored as files of
    whole rows: one, or one per row band of a split-mode pass."""

    pieces: Tuple[RowPiece, ...]
    width: int
    height: int
    bands: int

    def reader(self) -> "RasterFileReader":
        """A reader of all its bands (NaN pixels read as invalid); the caller closes it."""
        return RasterFileReader(self)

    def value_range(self, budget: int) -> Tuple[float, float]:
        """(minimum, maximum) of its valid values, read in windows within ``budget`` bytes."""
        reader = self.reader()
        low, high = np.inf, -np.inf
        try:
            for _, cube_bhw, valid_hw in iter_blocks(reader, block_windows(reader.info, reader.bytes_per_pixel,
                                                                           budget)):
                if valid_hw.any():
                    values = cube_bhw[:, valid_hw]
                    low, high = min(low, float(values.min())), max(high, float(values.max()))
        finally:
            reader.close()
        return low, high


def _band_runs(piece_rows: int, width: int, band: int, first_row: int, rows: int, first_column: int,
               columns: int) -> Iterator[Tuple[int, Optional[int]]]:
    """(byte offset in a piece's file, row of the window, None for all of them) of each contiguous run of one
    band's window: the whole window when it spans every column, else one run per row."""
    start = (band * piece_rows + first_row) * width + first_column
    if columns == width:
        yield start * FLOAT32.itemsize, None
        return
    for row in range(rows):
        yield (start + row * width) * FLOAT32.itemsize, row


def _write_at(handle, data: np.ndarray, offset: int) -> None:
    """Write all of a contiguous array at ``offset`` of an unbuffered file: one system call where the OS has
    positioned writes (not Windows)."""
    view = memoryview(data).cast("B")
    while view:
        if _POSITIONED_IO:
            written = os.pwrite(handle.fileno(), view, offset)
        else:
            handle.seek(offset)
            written = handle.write(view)
        view, offset = view[written:], offset + written


def _read_at(handle, data: np.ndarray, offset: int) -> None:
    """Fill a contiguous array from ``offset`` of an unbuffered file (see ``_write_at``)."""
    view = memoryview(data).cast("B")
    while view:
        if _POSITIONED_IO:
            read = os.preadv(handle.fileno(), [view], offset)
        else:
            handle.seek(offset)
            read = handle.readinto(view)
        if not read:
            raise OSError("the file ends early")
        view, offset = view[read:], offset + read


class RasterFileReader:
    """Reads windows of a RasterFile the way ``raster.BlockReader`` reads an input: (cube_bhw float32, valid_hw),
    a pixel valid when every band is finite, invalid pixels zeroed; the cube is overwritten by the next read."""

    def __init__(self, raster: RasterFile):
        self.raster = raster
        self.bands = tuple(range(1, raster.bands + 1))
        self.bytes_per_pixel = raster.bands * FLOAT32.itemsize
        # Whole rows are this file's blocks: windows of any number of rows are read without waste.
        self.info = RasterInfo(raster.pieces[0].path, raster.width, raster.height, raster.bands,
                               (FLOAT32,) * raster.bands, (None,) * raster.bands, (0.0, 1.0, 0.0, 0.0, 0.0, 1.0), "",
                               ("",) * raster.bands, (None,) * raster.bands, 1, raster.width)
        self._files = [open(piece.path, "rb", buffering=0) for piece in raster.pieces]
        self._buffer = WindowBuffer(FLOAT32)

    def read(self, first_row: int, row_count: int, first_column: int = 0, column_count: Optional[int] = None
             ) -> Tuple[np.ndarray, np.ndarray]:
        """(cube_bhw, valid_hw) of rows [first_row, first_row + row_count) and columns [first_column,
        first_column + column_count) (default: every column)."""
        width = self.raster.width - first_column if column_count is None else column_count
        cube_bhw = self._buffer.view((self.raster.bands, row_count, width))
        for piece, handle in zip(self.raster.pieces, self._files):
            start = max(first_row, piece.first_row)
            stop = min(first_row + row_count, piece.first_row + piece.rows)
            if start < stop:
                self._read_piece(handle, piece, cube_bhw[:, start - first_row:stop - first_row], start, first_column)
        # NaN marks an invalid pixel in every band; a float64 sum is non-finite exactly when some band is.
        valid_hw = np.isfinite(cube_bhw.sum(axis=0, dtype=np.float64))
        if not valid_hw.all():
            cube_bhw[:, ~valid_hw] = 0.0
        return cube_bhw, valid_hw

    def _read_piece(self, handle, piece: RowPiece, out_bhw: np.ndarray, first_row: int, first_column: int) -> None:
        rows, columns = out_bhw.shape[1:]
        try:
            for band in range(self.raster.bands):
                for offset, row in _band_runs(piece.rows, self.raster.width, band, first_row - piece.first_row,
                                              rows, first_column, columns):
                    _read_at(handle, out_bhw[band] if row is None else out_bhw[band, row], offset)
        except OSError as error:
            raise InputError(f"Reading the temporary file {piece.path} failed ({error}): was it deleted or "
                             f"truncated while the job ran?") from error

    def close(self) -> None:
        """Release the files now (a temporary file can then be deleted, also on Windows)."""
        for handle in self._files:
            handle.close()
        self._files = []
        self._buffer.release()


class TempRaster:
    """A raw band-sequential float32 file of ``rows`` x ``width`` pixels and ``bands`` bands, being written;
    NaN marks invalid pixels."""

    def __init__(self, path: str, width: int, rows: int, bands: int):
        self.path, self.width, self.rows, self.bands = path, width, rows, bands
        try:
            self._file = open(path, "w+b", buffering=0)
            self._file.truncate(width * rows * bands * FLOAT32.itemsize)
        except OSError as error:
            raise _temporary_error(path, error) from error

    def write(self, first_row: int, values_bhw: np.ndarray, valid_hw: np.ndarray, first_column: int = 0) -> None:
        """Write a block (same call as ``output.RasterWriter.write``); invalid pixels become NaN."""
        if valid_hw.all():
            block = np.ascontiguousarray(values_bhw, dtype=FLOAT32)
        else:
            block = values_bhw.astype(FLOAT32)
            block[:, ~valid_hw] = np.nan
        rows, columns = block.shape[1:]
        try:
            for band in range(self.bands):
                for offset, row in _band_runs(self.rows, self.width, band, first_row, rows, first_column, columns):
                    _write_at(self._file, block[band] if row is None else block[band, row], offset)
        except OSError as error:
            raise _temporary_error(self.path, error) from error

    def finish(self) -> RasterFile:
        """Close for writing; the finished file."""
        self.close()
        return RasterFile((RowPiece(self.path, 0, self.rows),), self.width, self.rows, self.bands)

    def close(self) -> None:
        """Close the file (finished or not)."""
        if not self._file.closed:
            self._file.close()


class Workspace:
    """The job's hidden temporary folder next to the output; removes everything in it on close."""

    def __init__(self, output_path: str):
        folder, name = os.path.split(os.path.abspath(output_path))
        # Named like the output's hidden partial file, so that a retry after a killed worker finds and removes it.
        self.folder = tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=folder)
        self._open: list = []

    def file(self, name: str) -> str:
        """The path of a file named ``name`` in the folder."""
        return os.path.join(self.folder, name)

    def raster(self, name: str, like: RasterInfo, bands: int) -> TempRaster:
        """A new temporary raster on the grid of ``like``."""
        temp = TempRaster(self.file(name + ".f32"), like.width, like.height, bands)
        self._open.append(temp)
        return temp

    def close(self) -> None:
        """Close every file the job opened here and delete the folder."""
        for item in self._open:
            item.close()
        self._open = []
        shutil.rmtree(self.folder, ignore_errors=True)
