"""Smoke test of both training stages on tiny synthetic scenes, resume, and ONNX export parity with torch."""
import json
import os
import shutil

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from fers_qgis.core.model_format import INPUT_NAME, OUTPUT_NAME, ModelMetadata
from training import export, restamp, train
from training.synthetic import make_scene, write_scene

BANDS = 10


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    for seed, name in enumerate(["alpha", "beta"]):
        write_scene(make_scene(rows=70, columns=72, bands=12, anomalies=0, seed=seed),
                    str(folder / f"{name}.tif"), str(folder / f"{name}_gt.tif"))
    return folder


def common(scenes, out, *extra):
    return ["--bands", str(BANDS), "--band-mode", "first", "--data", str(scenes), "--out", str(out),
            "--steps-per-epoch", "1", "--batch", "2", "--validation-tiles", "2", *extra]


@pytest.fixture(scope="module")
def trained(scenes, tmp_path_factory):
    """Stage 1 for one epoch, resumed for a second, stage 2 on it, then export."""
    root = tmp_path_factory.mktemp("runs")
    teacher, student, models = root / "teacher", root / "student", root / "models"
    assert train.main(["--stage", "teacher", *common(scenes, teacher, "--epochs", "1")]) == 0
    assert train.main(["--stage", "teacher", *common(scenes, teacher, "--epochs", "2", "--resume")]) == 0
    assert train.main(["--stage", "student", *common(scenes, student, "--epochs", "1", "--teacher",
                                                       str(teacher))]) == 0
    spectral, spatial = export.export_run(str(student), str(models), "tiny")
    return {"teacher": teacher, "student": student, "spectral": spectral, "spatial": spatial}


def history(run):
    with open(os.path.join(run, train.HISTORY_FILE)) as handle:
        return [json.loads(line) for line in handle]


def test_runs_write_checkpoints_config_and_validation(trained):
    teacher_history = history(trained["teacher"])
    assert [record["epoch"] for record in teacher_history] == [1, 2]
    for record in teacher_history:
        assert np.isfinite(record["loss"]) and {"rd", "rec", "bce", "val_pixel_auc", "val_rx_auc_x_spe"} <= set(record)
    config = train.read_config(trained["teacher"])
    assert config["stage"] == "teacher" and config["epochs"] == 2 and len(config["validation_scenes"]) == 1
    assert set(config["scenes"]).isdisjoint(config["validation_scenes"])
    student_record = history(trained["student"])[-1]
    assert {"xcorr", "cos", "var", "rec", "val_rx_auc_sum"} <= set(student_record)
    for name in (train.CHECKPOINT_FILE, train.ENHANCER_FILE, train.STUDENT_FILE, train.CONFIG_FILE):
        assert os.path.exists(os.path.join(trained["student"], name))
    # The student run carries the teacher's trained spectral branch unchanged.
    teacher_state = torch.load(os.path.join(trained["teacher"], train.ENHANCER_FILE))
    student_state = torch.load(os.path.join(trained["student"], train.ENHANCER_FILE))
    for key, value in teacher_state.items():
        torch.testing.assert_close(student_state[key], value)


def test_resume_equals_uninterrupted_run(scenes, tmp_path):
    """Stage 2 on the untrained spectral branch (--teacher random): 2 epochs == 1 epoch + resume."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train.main(["--stage", "student", *common(scenes, straight, "--epochs", "2")]) == 0
    assert train.main(["--stage", "student", *common(scenes, resumed, "--epochs", "1")]) == 0
    assert train.main(["--stage", "student", *common(scenes, resumed, "--epochs", "2", "--resume")]) == 0
    first = torch.load(straight / train.STUDENT_FILE)
    second = torch.load(resumed / train.STUDENT_FILE)
    for key, value in first.items():
        torch.testing.assert_close(second[key], value)
    assert train.read_config(straight)["teacher"] == train.RANDOM_TEACHER


def run_onnx(path, cube):
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: cube})[0]


@pytest.mark.parametrize("batch, height, width", [(1, 37, 53), (2, 64, 64), (1, 100, 71)])
def test_spectral_onnx_matches_torch(trained, batch, height, width):
    _, enhancer, _ = export.load_run(str(trained["student"]))
    cube = (np.random.default_rng(height).uniform(-0.1, 0.1, size=(batch, BANDS, height, width))
            .astype(np.float32))
    with torch.no_grad():
        expected = enhancer(torch.from_numpy(cube)).numpy()
    np.testing.assert_allclose(run_onnx(trained["spectral"], cube), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch", [1, 3])
def test_spatial_onnx_matches_torch(trained, batch):
    _, _, student = export.load_run(str(trained["student"]))
    cube = np.random.default_rng(batch).uniform(-0.1, 0.1, size=(batch, BANDS, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = student(torch.from_numpy(cube)).numpy()
    np.testing.assert_allclose(run_onnx(trained["spatial"], cube), expected, rtol=1e-4, atol=1e-5)


def test_metadata_round_trips(trained):
    spectral_model = onnx.load(trained["spectral"])
    spatial_model = onnx.load(trained["spatial"])
    spectral = ModelMetadata.from_metadata_props({p.key: p.value for p in spectral_model.metadata_props})
    spatial = ModelMetadata.from_metadata_props({p.key: p.value for p in spatial_model.metadata_props})
    assert (spectral.branch, spectral.bands, spectral.band_mode, spectral.halo, spectral.tile_size) == (
        "spectral", BANDS, "first", 4, 0)
    assert (spatial.branch, spatial.tile_size, spatial.fusion) == ("spatial", 64, "product-rx")
    assert spectral.companion == os.path.basename(trained["spatial"])
    assert spectral.normalisation_scale == pytest.approx(0.1)
    # New runs use the robust range; the synthetic scenes share one band set, so its wavelengths are recorded.
    assert (spectral.normalisation, spatial.normalisation) == ("robust", "robust")
    expected_wavelengths = np.linspace(400.0, 2500.0, 12)[:BANDS]
    np.testing.assert_allclose(spectral.wavelengths_nm, expected_wavelengths, atol=0.01)  # as written
    assert spatial.wavelengths_nm == spectral.wavelengths_nm
    assert "git_commit" in spectral.training and spectral.training["teacher"]["epochs"] == 2
    for model in (spectral_model, spatial_model):
        assert [i.name for i in model.graph.input] == [INPUT_NAME]
        assert [o.name for o in model.graph.output] == [OUTPUT_NAME]
        assert max(opset.version for opset in model.opset_import if opset.domain in ("", "ai.onnx")) >= 17
    height = spectral_model.graph.input[0].type.tensor_type.shape.dim[2]
    assert height.dim_param and not height.dim_value
    assert [d.dim_value for d in spatial_model.graph.input[0].type.tensor_type.shape.dim][1:] == [BANDS, 64, 64]


def test_fusion_rule_and_stage_check(trained):
    assert export.FUSION == "product-rx"
    with pytest.raises(ValueError, match="student"):
        export.load_run(str(trained["teacher"]))


def test_restamping_changes_the_fusion_rule_of_both_files_and_nothing_else(trained, tmp_path):
    for key in ("spectral", "spatial"):
        shutil.copy(trained[key], tmp_path)
    spectral = str(tmp_path / os.path.basename(trained["spectral"]))
    assert restamp.main([spectral, "--fusion", "product", "--reason", "a test"]) == 0
    for key in ("spectral", "spatial"):
        before, after = onnx.load(trained[key]), onnx.load(str(tmp_path / os.path.basename(trained[key])))
        metadata = ModelMetadata.from_metadata_props({p.key: p.value for p in after.metadata_props})
        assert metadata.fusion == "product"
        assert metadata.training["fusion_history"][-1]["from"] == "product-rx"
        assert metadata.training["fusion_history"][-1]["reason"] == "a test"
        assert after.graph == before.graph
    with pytest.raises(ValueError, match="spectral file"):
        restamp.restamp_fusion(str(tmp_path / os.path.basename(trained["spatial"])), "sum", "a test")


def test_cli_rejects_bad_options(scenes, tmp_path):
    with pytest.raises(SystemExit):
        train.main(["--stage", "teacher", *common(scenes, tmp_path / "run", "--paste-kinds", "zero,image")])
    with pytest.raises(SystemExit):
        train.main(["--stage", "teacher", *common(scenes, tmp_path / "run", "--teacher-network", '{"depth": 3}')])


def test_cli_teacher_network_widths():
    config, resume = train.parse_args(["--stage", "teacher", "--bands", "8", "--data", "d", "--out", "o",
                                       "--teacher-network", '{"layer2_width": 8, "freeze_teacher": false}'])
    assert not resume and config.teacher_network["layer2_width"] == 8
    assert config.teacher_network["freeze_teacher"] is False and config.teacher_network["layer3_width"] == 64


def test_resume_keeps_the_runs_schedule(tmp_path):
    saved = train.TrainConfig(stage="student", bands=8, band_mode="first", data="d", out=str(tmp_path), epochs=4)
    (tmp_path / train.CONFIG_FILE).write_text(json.dumps(train.dataclasses.asdict(saved)))
    base = ["--stage", "student", "--bands", "8", "--data", "d", "--out", str(tmp_path), "--resume"]
    config, resume = train.parse_args(base)
    assert resume and config.epochs == 4
    assert train.parse_args(base + ["--epochs", "6"])[0].epochs == 6


def test_a_moved_run_resumes_in_its_new_folder(tmp_path):
    saved = train.TrainConfig(stage="encoder", bands=8, band_mode="first", data="d", out=str(tmp_path / "old"))
    moved = tmp_path / "new"
    moved.mkdir()
    (moved / train.CONFIG_FILE).write_text(json.dumps(train.dataclasses.asdict(saved)))
    config, _ = train.parse_args(["--stage", "encoder", "--bands", "8", "--data", "d", "--out", str(moved),
                                  "--resume"])
    assert config.out == str(moved)


def test_zero_epochs_saves_the_untrained_networks_for_the_ablation_baseline(scenes, tmp_path):
    out = tmp_path / "untrained"
    assert train.main(["--stage", "student", *common(scenes, out, "--epochs", "0", "--seed", "4")]) == 0
    saved = torch.load(out / train.STUDENT_FILE)
    assert saved.keys() == train.SpatialStudent(BANDS).state_dict().keys()
    assert not (out / train.HISTORY_FILE).exists()


def test_encoder_pretraining_starts_from_the_untrained_twin_and_hands_its_layer1_to_stage_1(scenes, tmp_path):
    """The encoder stage begins at the seed's untrained enhancer (so its comparison is paired), trains the stem and
    layer1, and a stage-1 run with --encoder starts from exactly those, with its own head."""
    encoder, teacher = tmp_path / "encoder", tmp_path / "teacher"
    assert train.main(["--stage", "encoder", *common(scenes, encoder, "--epochs", "2")]) == 0
    record = history(encoder)[-1]
    assert np.isfinite(record["masked"]) and np.isfinite(record["val_loss"]) and "val_rx_auc_x_spe" in record
    twin = train.load_enhancer(train.RANDOM_TEACHER, BANDS, seed=0).state_dict()
    pretrained = torch.load(encoder / train.ENHANCER_FILE)
    assert not torch.allclose(pretrained["layer1.0.conv2.weight"], twin["layer1.0.conv2.weight"])
    torch.testing.assert_close(pretrained["conv2.weight"], twin["conv2.weight"])  # the head is not pretrained
    pretraining_start = common(scenes, teacher, "--epochs", "0", "--encoder", str(encoder))
    assert train.main(["--stage", "teacher", *pretraining_start]) == 0
    started = torch.load(teacher / train.ENHANCER_FILE)
    for name, value in pretrained.items():
        if name.startswith(("convh.", "layer1.")):
            torch.testing.assert_close(started[name], value)
    assert train.read_config(teacher)["encoder"] == str(encoder)


def test_masked_mse_counts_only_the_masked_pixels():
    target = torch.zeros(1, 2, 2, 2)
    prediction = torch.tensor([[[[1.0, 5.0], [0.0, 0.0]], [[3.0, 7.0], [0.0, 0.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert float(train.losses.masked_mse(prediction, target, mask)) == pytest.approx((1.0 + 9.0) / 2)
