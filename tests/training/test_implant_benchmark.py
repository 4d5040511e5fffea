"""The synthetic-implant benchmark labels exactly what it changes and scores detectors on shared draws."""
import numpy as np

from training import implant_benchmark
from training.synthetic import make_scene, write_scene


def test_implant_labels_every_changed_pixel_and_keeps_known_anomalies():
    rng = np.random.default_rng(0)
    host = rng.uniform(100, 200, size=(30, 20, 25))
    donor = rng.uniform(0, 1, size=(12, 8, 8))
    known = np.zeros((20, 25), dtype=bool)
    known[0, 0] = True
    sample = implant_benchmark.implant(host, donor, rng, blobs=5, known_anomalies_hw=known)
    changed = np.any(sample.cube_bhw != host, axis=0)
    assert changed.any()
    assert np.array_equal(sample.labels_hw & ~known, changed & ~known)
    assert sample.labels_hw[0, 0]


def test_run_scores_each_detector_on_every_draw(tmp_path):
    for seed in range(2):
        write_scene(make_scene(rows=30, columns=40, bands=16, anomalies=2, seed=seed), str(tmp_path / f"s{seed}.tif"))
    results = implant_benchmark.run(str(tmp_path), ["rx"], draws=3, seed=1)
    assert len(results.auc["rx"]) == 3
    assert all(0.5 < auc <= 1.0 for auc in results.auc["rx"])
    assert len(results.hosts) == 3 and set(results.hosts) <= {"s0", "s1"}


def test_run_implants_only_into_the_hosts_asked_for(tmp_path):
    for seed in range(3):
        write_scene(make_scene(rows=30, columns=40, bands=16, anomalies=2, seed=seed), str(tmp_path / f"s{seed}.tif"))
    results = implant_benchmark.run(str(tmp_path), ["rx"], draws=4, seed=0, hosts=["s2"])
    assert results.hosts == ["s2"] * 4
