"""How FERS cuts a raster: blocks within the memory budget, and the spatial tiles' grid."""
import pytest

from fers_qgis.core.tiling import ALIGNED_ROWS, MIN_BLOCK_SIDE, plan_blocks, tile_starts


@pytest.mark.parametrize("budget_mb", [1, 512])
@pytest.mark.parametrize("height, width", [(100_000, 100_000), (40, 2_000_000), (3_000_000, 30), (70, 53)])
def test_block_regions_stay_within_budget_whatever_the_raster_size(height, width, budget_mb):
    context, bytes_per_pixel, budget = 64, 5000, budget_mb * 2**20
    plan = plan_blocks(height, width, bytes_per_pixel, budget, context)
    bound = max(budget // bytes_per_pixel, (MIN_BLOCK_SIDE + 2 * context) ** 2)
    first_blocks = [block for _, block in zip(range(20_000), plan)]
    for r0, r1, c0, c1 in first_blocks:
        region = (min(r1 + context, height) - max(r0 - context, 0)) * (min(c1 + context, width) - max(c0 - context, 0))
        assert region <= bound
    assert plan.block_h * plan.block_w <= bound
    assert plan.block_h * plan.block_w * len(plan) >= height * width  # the blocks tile the whole raster
    if len(plan) <= 20_000:
        assert sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in first_blocks) == height * width


def test_tall_strips_end_on_whole_file_tiles():
    plan = plan_blocks(3000, 3000, 500, 512 * 2**20, 8)
    assert plan.block_w == 3000 and plan.block_h % ALIGNED_ROWS == 0


@pytest.mark.parametrize("extent, expected", [(20, [0]), (64, [0]), (70, [0, 6]), (130, [0, 48, 66]),
                                              (160, [0, 48, 96])])
def test_spatial_tiles_cover_each_axis_with_quarter_overlap(extent, expected):
    assert tile_starts(extent, 64) == expected
