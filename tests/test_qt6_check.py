"""The static Qt6 check (scripts/check_qt6.py): the plugin passes it, and it catches each Qt5-only form."""
import os

from scripts.check_qt6 import REPOSITORY, check_paths, check_source

BAD_SAMPLE = '''\
from qgis.PyQt.QtCore import QRegExp, QVariant, Qt
from qgis.PyQt.QtWidgets import QAction, QDialogButtonBox, QDesktopWidget
from qgis.core import QgsField, QgsWkbTypes

dialog.exec_()
field = QgsField("id", QVariant.Int)
buttons = QDialogButtonBox(QDialogButtonBox.Close)
label.setAlignment(Qt.AlignLeft)
kind = QgsWkbTypes.Polygon
'''

GOOD_SAMPLE = '''\
from qgis.PyQt.QtCore import QMetaType, Qt
from qgis.core import Qgis, QgsPalettedRasterRenderer, QgsProcessing

dialog.exec()
kind = QMetaType.Type.Int
label.setAlignment(Qt.AlignmentFlag.AlignLeft)
entry = QgsPalettedRasterRenderer.Class(0, color, "background")
version, temporary = Qgis.QGIS_VERSION_INT, QgsProcessing.TEMPORARY_OUTPUT
text = "QVariant.Int and exec_() in a string are not code"  # nor Qt.AlignLeft in a comment
'''


def test_the_plugin_has_no_qt5_only_code():
    assert check_paths([os.path.join(REPOSITORY, "fers_qgis")]) == []


def test_each_qt5_only_form_is_reported_on_its_line():
    findings = check_source(BAD_SAMPLE)
    assert [line for line, _ in findings] == [1, 2, 2, 5, 6, 7, 8, 9]
    messages = " | ".join(message for _, message in findings)
    for expected in ("QRegExp is gone", "QAction lives in QtGui", "QDesktopWidget is gone", "exec_() is gone",
                     "QVariant.Int", "QDialogButtonBox.Close: unscoped", "Qt.AlignLeft: unscoped",
                     "QgsWkbTypes.Polygon: unscoped"):
        assert expected in messages


def test_scoped_and_qt6_forms_pass():
    assert check_source(GOOD_SAMPLE) == []


def test_the_command_fails_on_a_bad_file(tmp_path, capsys):
    from scripts.check_qt6 import main

    (tmp_path / "bad.py").write_text(BAD_SAMPLE)
    assert main([str(tmp_path)]) == 1
    assert "bad.py:5: exec_() is gone" in capsys.readouterr().out
    (tmp_path / "bad.py").write_text(GOOD_SAMPLE)
    assert main([str(tmp_path)]) == 0
