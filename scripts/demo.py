"""``make demo``: detect anomalies in a scene with FERS (and RX) through qgis_process; score GeoTIFFs and PNGs.

Without ``--scene`` the scene is synthetic (made by training.synthetic: mixed smooth spectra with implanted
anomalies), because the real scenes cannot live in the repository. ``make demo SCENE=path/to/raster.tif`` runs the
same job on any raster GDAL reads.
"""
import argparse
import os
import sys
import tempfile

from fers_qgis.core.onnx_runtime import shipped_models
from fers_qgis.core.quicklook import write_quicklook
from scripts import qgis_process
from training.synthetic import make_scene, write_scene


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default="", help="raster to process (default: a synthetic demo scene)")
    parser.add_argument("--out", default="demo", help="output folder (default: demo)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    scene = args.scene
    if not scene:
        scene = os.path.join(args.out, "synthetic_scene.tif")
        write_scene(make_scene(), scene, os.path.join(args.out, "synthetic_scene_gt.tif"))
        print(f"Synthetic demo scene (200 x 160 pixels, 120 bands, 12 implanted anomalies): {scene}")
    stem = os.path.splitext(os.path.basename(scene))[0]
    # The main job is FERS with the default shipped model; RX runs too, for comparison.
    jobs = ([("fers:detectanomaliesfers", "fers")] if shipped_models() else []) + [("fers:detectanomaliesrx", "rx")]
    with tempfile.TemporaryDirectory(prefix="fers-demo-profile-") as profile:
        qgis_process.provide_onnxruntime(profile)  # what Plugins > FERS > Install FERS dependencies does
        for algorithm, name in jobs:
            output = os.path.abspath(os.path.join(args.out, f"{stem}_{name}_anomalies.tif"))
            finished = qgis_process.run_algorithm(algorithm, {"INPUT": os.path.abspath(scene), "OUTPUT": output},
                                                  profile)
            print(finished.stdout)
            if finished.returncode != 0 or not os.path.exists(output):
                print(finished.stderr, file=sys.stderr)
                print(f"qgis_process failed: no {name} anomaly map was written.", file=sys.stderr)
                return 1
            quicklook = os.path.splitext(output)[0] + ".png"
            write_quicklook(output, quicklook)
            print(f"{name} anomaly map: {output}\n{name} quick-look:  {quicklook}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
