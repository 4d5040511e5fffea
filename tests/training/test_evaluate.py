"""The evaluation CLI on synthetic labelled scenes (real scenes are covered by tests/core/test_rx.py)."""
import json

import pytest

from training import evaluate
from training.synthetic import make_scene, write_scene


@pytest.mark.parametrize("detector", ["rx", "rx-local"])
def test_cli_prints_table_and_writes_json(tmp_path, capsys, detector):
    for seed, name in enumerate(["alpha", "beta"]):
        write_scene(make_scene(rows=40, columns=50, bands=20, anomalies=4, seed=seed),
                    str(tmp_path / f"{name}.tif"), str(tmp_path / f"{name}_gt.tif"))
    (tmp_path / "unlabelled.tif").write_bytes(b"")  # no _gt partner: not a scene
    report = tmp_path / "report.json"
    assert evaluate.main(["--scenes", str(tmp_path), "--detector", detector, "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "alpha" in printed and "beta" in printed and "mean" in printed
    result = json.loads(report.read_text())
    assert result["detector"] == detector
    assert [scene["name"] for scene in result["scenes"]] == ["alpha", "beta"]
    for scene in result["scenes"]:
        assert 0.5 < scene["auc"] <= 1.0 and scene["seconds"] > 0
    assert result["mean_auc"] == pytest.approx(sum(s["auc"] for s in result["scenes"]) / 2)


def test_fers_detectors_run_a_given_model_through_the_core(tmp_path, capsys):
    pytest.importorskip("torch", reason="the test model is exported with torch")
    from tests.fers_models import ExportedModelSet

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    write_scene(make_scene(rows=40, columns=50, bands=20, anomalies=4, seed=3),
                str(scenes / "gamma.tif"), str(scenes / "gamma_gt.tif"))
    (tmp_path / "model").mkdir()
    model = ExportedModelSet(tmp_path / "model", bands=8)
    assert evaluate.runnable_detectors([model.spectral_path]) == [
        name for name in evaluate.DETECTORS if name != "fers-ensemble"]
    assert evaluate.runnable_detectors([model.spectral_path] * 2) == list(evaluate.DETECTORS)
    results = {}
    for detector in evaluate.FERS_DETECTORS:
        report = tmp_path / f"{detector}.json"
        assert evaluate.main(["--scenes", str(scenes), "--detector", detector, "--model", model.spectral_path,
                              model.spectral_path, "--json", str(report)]) == 0
        results[detector] = result = json.loads(report.read_text())
        assert result["detector"] == detector and 0.5 < result["mean_auc"] <= 1.0
    # An ensemble of one model twice ranks pixels as that model does.
    assert results["fers-ensemble"]["mean_auc"] == pytest.approx(results["fers"]["mean_auc"], abs=1e-6)


def test_fers_detector_without_any_model_says_what_to_pass(monkeypatch):
    monkeypatch.setattr(evaluate, "shipped_models", lambda: [])
    assert evaluate.runnable_detectors() == ["rx", "rx-local"]
    with pytest.raises(SystemExit, match="--model"):
        evaluate.make_detector("fers")
