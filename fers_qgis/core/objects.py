"""From a score raster to decisions: a threshold without ground truth, a binary anomaly mask, anomaly objects.

All passes stream rows of the single-band score raster, so memory stays bounded on any raster size. Objects are
8-connected regions of above-threshold pixels, found from row runs with a union-find: memory grows with the
number of anomalous runs, not with the raster.
"""
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from osgeo import gdal, ogr

from .errors import InputError
from .progress import Progress, Stage
from .output import MASK_NODATA, RasterWriter
from .raster import BlockReader, RasterInfo, block_windows, describe_raster, iter_blocks, open_dataset

THRESHOLD_RULES = ("top-percent", "score")
# Values gathered at once when refining a quantile; a histogram narrows the search first.
_QUANTILE_SAMPLE_LIMIT = 1_000_000
_HISTOGRAM_BINS = 65536
# Refuse to build more objects than this: a threshold that loose marks background, not anomalies.
MAX_OBJECTS = 100_000


def _score_blocks(reader: BlockReader, budget: int, progress: Optional[Progress]):
    windows = block_windows(reader.info, 8, budget, whole_rows=True)  # objects grow row by row
    for (first_row, _, _, _), cube_bhw, valid_hw in iter_blocks(reader, windows, progress):
        yield first_row, cube_bhw[0].astype(np.float64), valid_hw


def threshold_for(score_path: str, rule: str, value: float, budget: int = 64 * 2**20,
                  progress: Optional[Progress] = None) -> float:
    """The score threshold of a rule: "score" is ``value`` itself; "top-percent" is the score that ``value`` percent
    of the valid pixels reach or exceed (exact, found by histogram refinement over streaming passes)."""
    if rule not in THRESHOLD_RULES:
        raise InputError(f"Unknown threshold rule {rule!r}; choose one of {', '.join(THRESHOLD_RULES)}.")
    if rule == "score":
        if not math.isfinite(value):
            raise InputError("The score threshold must be a finite number.")
        return float(value)
    if not 0 < value < 100:
        raise InputError(f"The top percentage must lie between 0 and 100 (exclusive); got {value:g}.")
    reader = BlockReader(describe_raster(score_path), (1,))
    progress = progress or Progress()
    try:
        low, high, count = np.inf, -np.inf, 0
        for _, scores, valid in _score_blocks(reader, budget, Stage(progress, 0.0, 0.4)):
            if valid.any():
                low, high = min(low, scores[valid].min()), max(high, scores[valid].max())
                count += int(valid.sum())
        if count == 0:
            raise InputError("The score raster has no valid pixels to threshold.")
        # The rank-th largest valid score: at least ``value`` percent of the pixels are at or above it.
        rank = max(1, math.ceil(count * value / 100.0))
        return _kth_largest(reader, rank, float(low), float(high), budget, Stage(progress, 0.4, 1.0))
    finally:
        reader.close()


def _kth_largest(reader: BlockReader, rank: int, low: float, high: float, budget: int, progress: Progress
                 ) -> float:
    """The rank-th largest valid score, known to lie in [low, high]. Each pass histograms the values inside the
    interval and keeps them when few enough; else the interval narrows to the bin holding the answer (65536
    times narrower per pass, so a few passes reach a single float value)."""
    for attempt in range(1, 16):
        if low == high:
            return low
        above, inside, kept = 0, 0, []
        histogram = np.zeros(_HISTOGRAM_BINS, dtype=np.int64)
        for _, scores, valid in _score_blocks(reader, budget, Stage(progress, 1 - 0.5 ** (attempt - 1),
                                                                    1 - 0.5 ** attempt)):
            values = scores[valid]
            above += int((values > high).sum())
            values = values[(values >= low) & (values <= high)]
            inside += len(values)
            histogram += np.histogram(values, bins=_HISTOGRAM_BINS, range=(low, high))[0]
            if inside <= _QUANTILE_SAMPLE_LIMIT:
                kept.append(values)
        if inside <= _QUANTILE_SAMPLE_LIMIT:
            values = np.concatenate(kept)
            position = inside - (rank - above)
            return float(np.partition(values, position)[position])
        # np.histogram's bins are [e_i, e_i+1), the last one closed, with edges as linspace computes them.
        from_top = above + np.cumsum(histogram[::-1])
        index = _HISTOGRAM_BINS - 1 - int(np.searchsorted(from_top, rank))
        edges = np.linspace(low, high, _HISTOGRAM_BINS + 1)
        low = float(edges[index])
        upper = float(edges[index + 1])
        high = upper if index == _HISTOGRAM_BINS - 1 else float(np.nextafter(upper, -np.inf))
    return low


def write_mask(score_path: str, mask_path: str, threshold: float, budget: int = 64 * 2**20,
               progress: Optional[Progress] = None) -> int:
    """Byte GeoTIFF: 1 where the score reaches ``threshold``, 0 elsewhere, 255 (nodata) where there is no score.
    Returns the number of anomalous pixels."""
    info = describe_raster(score_path)
    reader = BlockReader(info, (1,))
    flagged = 0
    try:
        with RasterWriter(mask_path, info, ["Anomaly mask (1 = anomaly)"], nodata=MASK_NODATA,
                          data_type=gdal.GDT_Byte) as writer:
            for first_row, scores, valid in _score_blocks(reader, budget, progress):
                mask = (scores >= threshold) & valid
                flagged += int(mask.sum())
                writer.write(first_row, mask[None].astype(np.uint8), valid)
    finally:
        reader.close()
    return flagged


@dataclass
class AnomalyObject:
    """An 8-connected region of pixels at or above the threshold, in map coordinates."""

    object_id: int
    pixel_count: int
    area: float                  # map units squared
    peak_score: float
    mean_score: float
    centroid_x: float
    centroid_y: float
    peak_x: float
    peak_y: float
    polygon_wkt: str


@dataclass
class _Region:
    pixel_count: int = 0
    score_sum: float = 0.0
    peak_score: float = -np.inf
    peak_rc: Tuple[int, int] = (0, 0)
    row_sum: float = 0.0
    column_sum: float = 0.0
    runs: List[Tuple[int, int, int]] = field(default_factory=list)   # (row, first column, stop column)

    def merge(self, other: "_Region") -> None:
        self.pixel_count += other.pixel_count
        self.score_sum += other.score_sum
        if other.peak_score > self.peak_score:
            self.peak_score, self.peak_rc = other.peak_score, other.peak_rc
        self.row_sum += other.row_sum
        self.column_sum += other.column_sum
        self.runs.extend(other.runs)


def _runs(mask_w: np.ndarray) -> List[Tuple[int, int]]:
    """(start, stop) of the runs of True in a row."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask_w.view(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def find_objects(score_path: str, threshold: float, budget: int = 64 * 2**20,
                 progress: Optional[Progress] = None) -> List[AnomalyObject]:
    """The anomaly objects of a score raster: 8-connected regions of valid pixels scoring at least ``threshold``,
    largest peak first."""
    info = describe_raster(score_path)
    reader = BlockReader(info, (1,))
    regions: Dict[int, _Region] = {}
    parent: Dict[int, int] = {}

    def root(label: int) -> int:
        while parent[label] != label:
            parent[label] = parent[parent[label]]
            label = parent[label]
        return label

    previous: List[Tuple[int, int, int]] = []   # runs of the row above: (start, stop, label)
    try:
        for first_row, scores, valid in _score_blocks(reader, budget, progress):
            for offset, (row_scores, row_mask) in enumerate(zip(scores, (scores >= threshold) & valid)):
                row = first_row + offset
                current = []
                for start, stop in _runs(row_mask):
                    run_scores = row_scores[start:stop]
                    peak = int(np.argmax(run_scores))
                    label = len(parent)
                    parent[label] = label
                    regions[label] = _Region(stop - start, float(run_scores.sum()), float(run_scores[peak]),
                                             (row, start + peak), float(row * (stop - start)),
                                             float((start + stop - 1) * (stop - start) / 2), [(row, start, stop)])
                    for above_start, above_stop, above_label in previous:
                        if above_start <= stop and start <= above_stop:  # touching, diagonals included
                            first, second = root(above_label), root(label)
                            if first != second:
                                parent[second] = first
                                regions[first].merge(regions.pop(second))
                    current.append((start, stop, label))
                if len(regions) > MAX_OBJECTS:
                    raise InputError(f"More than {MAX_OBJECTS} anomaly objects at threshold {threshold:g}: that "
                                     f"marks background, not anomalies. Use a stricter threshold.")
                previous = current
    finally:
        reader.close()
    to_map, pixel_area = _map_placement(info)
    objects = sorted((_to_object(region, to_map, pixel_area) for region in regions.values()),
                     key=lambda item: -item.peak_score)
    for number, item in enumerate(objects, start=1):
        item.object_id = number
    return objects


def _map_placement(info: RasterInfo) -> Tuple[Callable[[float, float], Tuple[float, float]], Optional[float]]:
    """(to_map(row, column) -> (x, y), pixel area or None): the geotransform's affine map, or for a swath
    georeferenced by ground control points only, GDAL's GCP transformer (pixel areas then vary: None)."""
    if info.has_geotransform or not info.gcps:
        x0, dx, rx, y0, ry, dy = info.geotransform

        def affine(row: float, column: float) -> Tuple[float, float]:
            return x0 + column * dx + row * rx, y0 + column * ry + row * dy
        return affine, abs(dx * dy - rx * ry)
    transformer = gdal.Transformer(open_dataset(info.path), None, [])

    def through_gcps(row: float, column: float) -> Tuple[float, float]:
        success, point = transformer.TransformPoint(0, column, row)
        if not success:
            raise InputError(f"The ground control points of {info.path} cannot place pixel ({row:g}, {column:g}).")
        return point[0], point[1]
    return through_gcps, None


def _to_object(region: _Region, to_map: Callable[[float, float], Tuple[float, float]],
               pixel_area: Optional[float]) -> AnomalyObject:
    """Map geometry of a region; positions are (row, column) with pixel centres at +0.5."""
    rectangles = ogr.Geometry(ogr.wkbMultiPolygon)
    for row, start, stop in region.runs:
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for r, c in ((row, start), (row, stop), (row + 1, stop), (row + 1, start), (row, start)):
            ring.AddPoint_2D(*to_map(r, c))
        rectangle = ogr.Geometry(ogr.wkbPolygon)
        rectangle.AddGeometry(ring)
        rectangles.AddGeometry(rectangle)
    polygon = rectangles.UnionCascaded() if len(region.runs) > 1 else rectangles.GetGeometryRef(0)
    centroid = to_map(region.row_sum / region.pixel_count + 0.5, region.column_sum / region.pixel_count + 0.5)
    peak = to_map(region.peak_rc[0] + 0.5, region.peak_rc[1] + 0.5)
    area = region.pixel_count * pixel_area if pixel_area is not None else polygon.GetArea()
    return AnomalyObject(0, region.pixel_count, area, region.peak_score,
                         region.score_sum / region.pixel_count, centroid[0], centroid[1], peak[0], peak[1],
                         polygon.ExportToWkt())
