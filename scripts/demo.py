"""``make demo``: detect anomalies in a scene through qgis_process and write the score GeoTIFF and a PNG.

Without ``--scene`` the scene is synthetic (made by training.synthetic: mixed smooth spectra with implanted
anomalies), because the real scenes cannot live in the repository. ``make demo SCENE=path/to/raster.tif`` runs the
same job on any raster GDAL reads.
"""
import argparse
import os
import sys

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
    output = os.path.abspath(os.path.join(args.out, f"{stem}_rx_anomalies.tif"))
    finished = qgis_process.run_algorithm("fers:detectanomaliesrx",
                                          {"INPUT": os.path.abspath(scene), "OUTPUT": output})
    print(finished.stdout)
    if finished.returncode != 0 or not os.path.exists(output):
        print(finished.stderr, file=sys.stderr)
        print("qgis_process failed: no anomaly map was written.", file=sys.stderr)
        return 1
    quicklook = os.path.splitext(output)[0] + ".png"
    write_quicklook(output, quicklook)
    print(f"Anomaly map: {output}\nQuick-look:  {quicklook}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
