#!/usr/bin/env bash
# Screenshots of the real plugin in QGIS under Xvfb, for the README: docs/screenshots/{toolbox,dialog,map}.png.
# Usage (from the repository root, after make setup): bash docs/make_screenshots.sh [SCENE.tif]
# QGIS runs in a throw-away profile with this plugin enabled; onnxruntime comes from the project's venv.
set -euo pipefail
scene=$(realpath "${1:-../shared/data/eval/hydice_urban.tif}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"
mkdir -p "$work/profiles/profiles/default/QGIS" "$work/out" docs/screenshots
printf '[PythonPlugins]\nfers_qgis=true\nprocessing=true\n[qgis]\nshowTips322=false\ncheckVersion=false\n' \
  > "$work/profiles/profiles/default/QGIS/QGIS3.ini"
SHOTS_OUT="$work/out" SHOTS_SCENE="$scene" XDG_RUNTIME_DIR="$work" QGIS_PLUGINPATH="$PWD" \
  PYTHONPATH="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
  timeout 300 xvfb-run -a -s "-screen 0 1400x900x24" \
  qgis --nologo --noversioncheck --profiles-path "$work/profiles" --code docs/screenshots_in_qgis.py
cp "$work/out/toolbox.png" "$work/out/dialog.png" "$work/out/map.png" docs/screenshots/
echo "wrote docs/screenshots/toolbox.png dialog.png map.png"
