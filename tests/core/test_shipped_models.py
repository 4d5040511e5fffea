"""The model sets shipped in resources/models: what they declare, what Automatic takes, and that they run."""
import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="FERS models run with onnxruntime")
from fers_qgis.core.enhancement import FersOptions, detect_fers  # noqa: E402
from fers_qgis.core.onnx_runtime import load_model_set, model_label, shipped_model_for, shipped_models  # noqa: E402
from fers_qgis.core.progress import Progress  # noqa: E402
from fers_qgis.core.output import OUTPUT_NODATA  # noqa: E402
from tests.helpers import read_raster, set_wavelengths, write_raster  # noqa: E402

SHIPPED = shipped_models()
pytestmark = pytest.mark.skipif(not SHIPPED, reason="no model set is shipped under resources/models")


class Log(Progress):
    def __init__(self):
        self.messages = []

    def info(self, message):
        self.messages.append(message)


def sensor_scene(tmp_path, bands, first_nm, last_nm, rows=40, columns=36, seed=0):
    """A smooth random scene of ``bands`` bands with wavelengths spread over first_nm-last_nm."""
    rng = np.random.default_rng(seed)
    wavelengths = np.linspace(first_nm, last_nm, bands)
    endmembers = np.cumsum(rng.normal(size=(4, bands)), axis=1) + 50
    abundances = rng.dirichlet(np.ones(4), size=rows * columns)
    cube = (abundances @ endmembers).T.reshape(bands, rows, columns).astype(np.float32)
    path = write_raster(tmp_path / f"scene{bands}.tif", cube)
    return set_wavelengths(path, wavelengths)


def test_shipped_sets_declare_what_their_names_say():
    names = {model_label(path): load_model_set(path).metadata for path in SHIPPED}
    bands = sorted(metadata.bands for metadata in names.values())
    assert bands == [50, 100, 200]
    for name, metadata in names.items():
        assert name == f"fers-b{metadata.bands}-{metadata.band_mode}"
        assert metadata.fusion == "product-rx" and metadata.normalisation == "robust"


def test_automatic_reads_a_285_band_emit_like_raster_over_its_whole_range(tmp_path):
    scene = sensor_scene(tmp_path, 285, 381, 2493)
    model = shipped_model_for(285)
    assert load_model_set(model).bands >= 200
    log, output = Log(), str(tmp_path / "scores.tif")
    detect_fers(scene, output, model, FersOptions(), progress=log)
    read = [message for message in log.messages if message.startswith("FERS reads")]
    assert read == ["FERS reads 285 of the raster's 285 bands, 381-2493 nm (bands 1-285), with "
                    f"{load_model_set(model).bands} model bands (resample mode)."]
    scores = read_raster(output).cube_bhw[0]
    assert np.isfinite(scores).all() and (scores != OUTPUT_NODATA).all()


@pytest.mark.parametrize("bands", [72, 102, 162, 425])
def test_automatic_keeps_every_band_of_common_sensors(tmp_path, bands):
    metadata = load_model_set(shipped_model_for(bands)).metadata
    assert metadata.band_mode == "resample" and metadata.bands >= min(bands, 200)
