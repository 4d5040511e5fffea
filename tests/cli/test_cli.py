"""The command line (``python -m fers_qgis.cli detect``): in this process, on a Dask LocalCluster of 2 worker
processes (archives, a killed worker, a bad input), and split mode, each compared with what the plugin writes."""
import os
import signal
import threading
import time

import numpy as np
import processing
import pytest

from fers_qgis.cli.main import main
from fers_qgis.core.detection import RxOptions, detect_rx
from fers_qgis.core.output import OUTPUT_NODATA
from tests.helpers import EVAL_SCENES, anomaly_scene, read_raster, write_raster

distributed = pytest.importorskip("distributed", reason="the cluster tests need dask and distributed")

NODATA = -1000.0


def scene_file(folder, name, seed, height=30, width=40):
    """An anomaly scene with a nodata corner, as a Float32 GeoTIFF."""
    cube = anomaly_scene(height, width, seed=seed).cube_bhw.copy()
    cube[:, :2, :3] = NODATA
    return write_raster(os.path.join(str(folder), name), cube, nodata=NODATA)


def scores(path):
    return read_raster(path).cube_bhw[0]


def reference_rx(source, folder):
    """What the plugin's engine writes for the scene with the default RX options."""
    output = os.path.join(str(folder), "reference_" + os.path.basename(source))
    detect_rx(source, output, RxOptions())
    return scores(output)


def visible_files(folder):
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes, shared by the tests that only use it."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as local_cluster:
        yield local_cluster


def test_plain_run_scores_files_folders_and_patterns_and_skips_finished_outputs(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    first = scene_file(inputs, "first.tif", 0)
    second = scene_file(inputs, "second.tif", 1)
    (inputs / "notes.txt").write_text("not a raster")
    out = tmp_path / "out"
    assert main(["detect", "--detector", "rx", str(inputs / "fir*.tif"), str(inputs), "--out", str(out)]) == 0
    assert visible_files(out) == ["first_rx_anomalies.tif", "second_rx_anomalies.tif"]
    np.testing.assert_array_equal(scores(out / "first_rx_anomalies.tif"), reference_rx(first, tmp_path))
    np.testing.assert_array_equal(scores(out / "second_rx_anomalies.tif"), reference_rx(second, tmp_path))
    assert "2 done, 0 skipped, 0 failed" in capsys.readouterr().out

    finished = os.stat(out / "first_rx_anomalies.tif").st_mtime_ns
    assert main(["detect", "--detector", "rx", str(inputs), "--out", str(out)]) == 0
    assert "0 done, 2 skipped" in capsys.readouterr().out
    assert os.stat(out / "first_rx_anomalies.tif").st_mtime_ns == finished
    assert main(["detect", "--detector", "rx", first, "--overwrite", "--out", str(out)]) == 0
    assert "1 done, 0 skipped" in capsys.readouterr().out


def test_local_rx_uses_the_plugin_windows(tmp_path):
    source = scene_file(tmp_path, "scene.tif", 0)
    out = tmp_path / "out"
    assert main(["detect", "--detector", "rx-local", "--inner-window", "3", "--outer-window", "9", source,
                 "--out", str(out)]) == 0
    expected = tmp_path / "expected.tif"
    detect_rx(source, str(expected), RxOptions(detector="local", inner_window=3, outer_window=9))
    np.testing.assert_array_equal(scores(out / "scene_rx-local_anomalies.tif"), scores(expected))


def test_archive_on_a_cluster_with_a_bad_input_reports_it_and_finishes_the_others(tmp_path, cluster, capsys):
    sources = [scene_file(tmp_path, f"scene{index}.tif", index) for index in range(3)]
    damaged = tmp_path / "damaged.tif"
    damaged.write_bytes(b"II*\x00 truncated")
    missing = str(tmp_path / "missing.tif")
    out = tmp_path / "out"
    code = main(["detect", "--detector", "rx", *sources, str(damaged), missing, "--out", str(out),
                 "--scheduler", cluster.scheduler_address])
    assert code == 1
    captured = capsys.readouterr()
    failures = [line for line in captured.err.splitlines() if line.startswith("failed:")]
    assert len(failures) == 2
    assert any(str(damaged) in line and "Cannot read" in line for line in failures)
    assert any(missing in line and "does not exist" in line for line in failures)
    assert "3 done, 0 skipped, 2 failed" in captured.out
    assert visible_files(out) == [f"scene{index}_rx_anomalies.tif" for index in range(3)]
    for index, source in enumerate(sources):
        np.testing.assert_array_equal(scores(out / f"scene{index}_rx_anomalies.tif"), reference_rx(source, tmp_path))
    assert os.listdir(out) == visible_files(out)  # no hidden leftovers either


def writer_processes(folder, pids):
    """The worker processes that hold a hidden partial output of ``folder`` open (Linux /proc)."""
    writers = []
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if any(os.path.dirname(link) == str(folder) and link.endswith(".partial.tif") for link in links):
            writers.append(pid)
    return writers


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="finds the writing worker through /proc")
def test_worker_killed_while_writing_is_retried_and_outputs_are_identical(tmp_path):
    rng = np.random.default_rng(0)
    sources = [write_raster(tmp_path / f"scene{index}.tif", rng.normal(size=(32, 400, 400)).astype(np.float32))
               for index in range(4)]
    out = tmp_path / "out"
    out.mkdir()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as local_cluster, distributed.Client(local_cluster) as client:
        pids = list(client.run(os.getpid).values())
        outcome = {}
        run = threading.Thread(target=lambda: outcome.update(code=main(
            ["detect", "--detector", "rx", *sources, "--out", str(out), "--scheduler",
             local_cluster.scheduler_address])))
        run.start()
        killed = []
        deadline = time.monotonic() + 60
        while run.is_alive() and not killed and time.monotonic() < deadline:
            for pid in writer_processes(out, pids):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.002)
        run.join(180)
    assert killed, "no worker was caught writing an output"
    assert outcome["code"] == 0
    assert sorted(os.listdir(out)) == [f"scene{index}_rx_anomalies.tif" for index in range(4)]
    for index, source in enumerate(sources):
        np.testing.assert_array_equal(scores(out / f"scene{index}_rx_anomalies.tif"), reference_rx(source, tmp_path))


@pytest.mark.usefixtures("fers_plugin")
def test_split_rx_equals_the_plugin_output(tmp_path, cluster):
    source = scene_file(tmp_path, "scene.tif", 0, height=64, width=24)
    expected = tmp_path / "plugin.tif"
    processing.run("fers:detectanomaliesrx", {"INPUT": source, "OUTPUT": str(expected)})
    out = tmp_path / "out"
    assert main(["detect", "--detector", "rx", "--split", "--tasks", "5", source, "--out", str(out),
                 "--scheduler", cluster.scheduler_address]) == 0
    written = read_raster(out / "scene_rx_anomalies.tif")
    plugin = read_raster(expected)
    assert written.band_names == plugin.band_names and written.geotransform == plugin.geotransform
    np.testing.assert_allclose(written.cube_bhw, plugin.cube_bhw, rtol=1e-6)
    assert os.listdir(out) == ["scene_rx_anomalies.tif"]


def test_split_mode_refuses_local_detectors(tmp_path):
    with pytest.raises(SystemExit, match="window around each pixel"):
        main(["detect", "--detector", "rx-local", "--split", "--workers", "2", "x.tif", "--out", str(tmp_path)])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    pytest.importorskip("torch", reason="the test models are built and exported with torch")
    from tests.fers_models import ExportedModelSet
    return ExportedModelSet(tmp_path_factory.mktemp("models"), bands=6)


@pytest.mark.usefixtures("fers_plugin")
@pytest.mark.parametrize("detector, scale", [(0, False), (1, True)])  # the model's sum rule; product rule, 0-1
def test_split_fers_in_many_bands_equals_the_plugin_output(tmp_path, cluster, models, detector, scale):
    from fers_qgis.core.enhancement import FersOptions
    from fers_qgis.processing.algorithms.detect_fers import DETECTOR_CHOICES
    from fers_qgis.cli.split import split_fers

    source = scene_file(tmp_path, "scene.tif", 0, height=90, width=70)
    expected = tmp_path / "plugin.tif"
    processing.run("fers:detectanomaliesfers", {"INPUT": source, "MODEL_FILE": models.spectral_path,
                                                "DETECTOR": detector, "SCALE": scale, "OUTPUT": str(expected)})
    output = tmp_path / "split.tif"
    name, fusion = DETECTOR_CHOICES[detector][-1]
    with distributed.Client(cluster) as client:
        # A small budget and thin bands: 16 x 16 feature blocks, bands of 16 rows sharing spatial tiles.
        split_fers(client, source, str(output), models.spectral_path,
                   FersOptions(detector=name, fusion=fusion, scale_scores=scale, memory_budget_mb=1),
                   tasks=6, min_band_rows=16)
    written, plugin = read_raster(output), read_raster(expected)
    assert written.band_names == plugin.band_names
    np.testing.assert_allclose(written.cube_bhw, plugin.cube_bhw, rtol=1e-6, atol=1e-12)
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # band files and workspace gone


@pytest.mark.usefixtures("fers_plugin")
def test_split_fers_of_a_raster_in_one_feature_block_equals_the_plugin_output(tmp_path, cluster, models):
    from fers_qgis.cli.split import split_fers

    source = scene_file(tmp_path, "scene.tif", 0, height=40, width=30)  # one feature block at the default budget
    expected = tmp_path / "plugin.tif"
    processing.run("fers:detectanomaliesfers", {"INPUT": source, "MODEL_FILE": models.spectral_path,
                                                "OUTPUT": str(expected)})
    output = tmp_path / "split.tif"
    with distributed.Client(cluster) as client:
        split_fers(client, source, str(output), models.spectral_path, tasks=4)
    np.testing.assert_allclose(read_raster(output).cube_bhw, read_raster(expected).cube_bhw, rtol=1e-6,
                               atol=1e-12)


@pytest.mark.usefixtures("fers_plugin")
@pytest.mark.skipif(not EVAL_SCENES, reason="needs the evaluation scenes in ../shared/data/eval")
@pytest.mark.parametrize("detector, algorithm", [("rx", "fers:detectanomaliesrx"),
                                                 ("fers", "fers:detectanomaliesfers")])
def test_eval_scenes_on_two_workers_equal_the_plugin(tmp_path, detector, algorithm):
    scenes = [path[:-len("_gt.tif")] + ".tif" for path in EVAL_SCENES]
    out = tmp_path / "out"
    assert main(["detect", "--detector", detector, "--workers", "2", *scenes, "--out", str(out)]) == 0
    assert len(os.listdir(out)) == len(scenes)
    for scene in scenes:
        name = os.path.splitext(os.path.basename(scene))[0]
        expected = tmp_path / f"{name}_plugin.tif"
        processing.run(algorithm, {"INPUT": scene, "OUTPUT": str(expected)})
        # Workers and QGIS may use different BLAS libraries: rounding differs by about 1e-7 of each map's range,
        # and near-zero products of the FERS maps (0-1 each) carry it as large relative errors.
        reference = scores(expected)
        np.testing.assert_allclose(scores(out / f"{name}_{detector}_anomalies.tif"), reference, rtol=1e-6,
                                   atol=1e-6 * reference[reference != OUTPUT_NODATA].max())


def test_row_bands_cover_every_window_once_in_rectangles_of_whole_window_rows():
    from fers_qgis.cli.split import row_bands

    # Runs of whole blocks: 3 window rows of 16 rows, each cut into 3 windows across 40 columns.
    windows = [(row, min(16, 40 - row), column, min(16, 40 - column)) for row in range(0, 40, 16)
               for column in range(0, 40, 16)]
    bands = row_bands(windows, tasks=2)
    assert [window for _, _, members in bands for window in members] == windows
    assert [(start, stop) for start, stop, _ in bands] == [(0, 32), (32, 40)]
    assert [(start, stop) for start, stop, _ in row_bands(windows, tasks=8, min_rows=20)] == [(0, 32), (32, 40)]
    assert len(row_bands(windows, tasks=8)) == 3


def test_import_then_detect_equals_detect_on_the_product_imported_on_the_fly(tmp_path, capsys):
    pytest.importorskip("netCDF4", reason="building the NetCDF test product needs netCDF4 (Debian python3-netcdf4)")
    from tests.product_files import write_emit_l2a

    granule = write_emit_l2a(tmp_path)
    imported_dir, scores_dir = tmp_path / "imported", tmp_path / "scores"
    assert main(["import", "--sensor-geometry", granule.path, str(tmp_path / "nothing*.nc"), "--out",
                 str(imported_dir)]) == 1
    assert "1 done, 0 skipped, 1 failed" in capsys.readouterr().out
    stem = os.path.splitext(os.path.basename(granule.path))[0]
    assert visible_files(imported_dir) == [f"{stem}.tif"]
    assert main(["detect", "--detector", "rx", granule.path, "--out", str(scores_dir)]) == 0
    np.testing.assert_array_equal(scores(scores_dir / f"{stem}_rx_anomalies.tif"),
                                  reference_rx(str(imported_dir / f"{stem}.tif"), tmp_path))
    assert os.listdir(scores_dir) == [f"{stem}_rx_anomalies.tif"]  # the temporary import is gone


def test_import_in_sensor_geometry_writes_the_swath_as_recorded(tmp_path, capsys):
    pytest.importorskip("netCDF4", reason="building the NetCDF test product needs netCDF4 (Debian python3-netcdf4)")
    from osgeo import gdal
    from tests.product_files import write_emit_l2a

    granule = write_emit_l2a(tmp_path)
    assert main(["import", "--sensor-geometry", granule.path, "--out", str(tmp_path / "out")]) == 0
    stem = os.path.splitext(os.path.basename(granule.path))[0]
    dataset = gdal.Open(str(tmp_path / "out" / f"{stem}.tif"))
    assert (dataset.RasterYSize, dataset.RasterXSize) == granule.swath_dcb.shape[:2]
    assert dataset.GetGCPCount() > 0


@pytest.mark.parametrize("words, expected", [(["3", "7", "9"], "3,7,9"), (["1-50"], "1-50"),
                                             (["1-10,20-30"], "1-10,20-30"), (["400-1000", "nm"], "400-1000 nm"),
                                             (["0.4-1.0 um"], "0.4-1.0 um"), (None, None)])
def test_bands_take_the_plugins_selection_text(words, expected):
    from fers_qgis.cli.main import band_selection
    assert band_selection(words) == expected


def test_rx_on_a_wavelength_range_uses_the_bands_inside_it(tmp_path, capsys):
    from tests.helpers import set_wavelengths
    cube = np.random.default_rng(4).normal(100, 5, size=(6, 20, 20)).astype(np.float32)
    scene = write_raster(tmp_path / "scene.tif", cube)
    set_wavelengths(scene, [450, 550, 650, 750, 850, 950])
    assert main(["detect", "--detector", "rx", scene, "--bands", "500-800", "nm", "--out", str(tmp_path / "a")]) == 0
    assert main(["detect", "--detector", "rx", scene, "--bands", "2-4", "--out", str(tmp_path / "b")]) == 0
    np.testing.assert_array_equal(scores(tmp_path / "a" / "scene_rx_anomalies.tif"),
                                  scores(tmp_path / "b" / "scene_rx_anomalies.tif"))
