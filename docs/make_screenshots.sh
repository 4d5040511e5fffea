#!/usr/bin/env bash
# The acceptance walk through the real QGIS desktop under Xvfb (docs/screenshots_in_qgis.py says what it does), and
# its screenshots for the README in docs/screenshots/.
# Usage (from the repository root, after make setup): bash docs/make_screenshots.sh [EVAL_FOLDER]
# QGIS runs in a throw-away profile with this plugin enabled and WITHOUT onnxruntime: the walk installs it with
# Plugins > FERS > Install FERS dependencies (pip, from the package index) and runs FERS again without a restart.
# Needs ../shared/data/eval (or EVAL_FOLDER) and network access for pip; takes about two minutes.
set -euo pipefail
eval_folder=$(realpath "${1:-../shared/data/eval}")
scenes="$eval_folder/hydice_urban.tif:$eval_folder/hydice_urban_ii.tif:$eval_folder/pavia_beach_4.tif"
shots="fers_missing installer dialog map installer_again toolbox context_menu batch_rows batch designer"
if ! command -v xvfb-run >/dev/null || ! command -v xdotool >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get install -y -q --no-install-recommends xvfb xauth xdotool
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"
mkdir -p "$work/profiles/profiles/default/QGIS" "$work/out" docs/screenshots
printf '[PythonPlugins]\nfers_qgis=true\nprocessing=true\n[qgis]\nshowTips322=false\ncheckVersion=false\n' \
  > "$work/profiles/profiles/default/QGIS/QGIS3.ini"
# Debian's Python as QGIS uses it: the project's venv (which has onnxruntime) stays out of QGIS here.
status=0
SHOTS_OUT="$work/out" SHOTS_SCENES="$scenes" XDG_RUNTIME_DIR="$work" QGIS_PLUGINPATH="$PWD" \
  timeout 900 xvfb-run -a -s "-screen 0 1400x900x24" \
  qgis --nologo --noversioncheck --profiles-path "$work/profiles" --code docs/screenshots_in_qgis.py || status=$?
# Everything the walk left, for a look when it failed: build/screenshots/ (not committed).
mkdir -p build/screenshots && cp "$work"/out/*.png "$work/out/walk.log" build/screenshots/ 2>/dev/null || true
cat "$work/out/walk.log"
# QGIS 3.22 may abort while tearing down after the walk (exit status 134): the walk's own log says whether it passed.
grep -q " done$" "$work/out/walk.log" || { echo "the walk failed (QGIS exit status $status)"; exit 1; }
for shot in $shots; do cp "$work/out/$shot.png" docs/screenshots/; done
echo "wrote docs/screenshots/{${shots// /,}}.png"
