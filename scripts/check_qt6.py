"""Static check that the plugin's code runs on Qt5 (QGIS 3.22) and Qt6 (QGIS 4) alike.

    python -m scripts.check_qt6 [PATH ...]    (default: fers_qgis/; exit status 1 when something is found)

No QGIS 4 package exists for Debian, so this is what catches Qt6 regressions here. It reads the code's tokens
(strings and comments are ignored) and reports:
- unscoped enum members: ``Qt.AlignLeft``, ``QDialogButtonBox.Close``, ``QgsWkbTypes.Polygon`` (PyQt6 and QGIS 4
  only know ``Qt.AlignmentFlag.AlignLeft``...);
- ``exec_()`` / ``print_()``, ``QVariant.Int``-style types (QMetaType in Qt6), classes Qt6 removed (QRegExp,
  QDesktopWidget...), and classes Qt6 moved from QtWidgets to QtGui (QAction...) imported from QtWidgets.
``fers_qgis/compat.py`` is exempt: it is the one place that holds the old forms, for QGIS 3.22.
"""
import argparse
import ast
import io
import os
import re
import sys
import tokenize
from typing import Iterator, List, Tuple

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXEMPT = (os.path.join("fers_qgis", "compat.py"),)

# Owners whose capitalised attributes are enum members unless followed by '.' (a scoped enum) or '(' (a class).
_QT_OWNER = re.compile(r"^(Qt|Qgis|Qgs\w+|Q[A-Z]\w*)$")
_CONSTANT = re.compile(r"^[A-Z0-9_]+$")  # Qgis.QGIS_VERSION_INT, QgsProcessing.TEMPORARY_OUTPUT
RENAMED_METHODS = {"exec_": "exec()", "print_": "print()"}
REMOVED_CLASSES = {
    "QRegExp": "QRegularExpression", "QRegExpValidator": "QRegularExpressionValidator",
    "QDesktopWidget": "QScreen (QGuiApplication.primaryScreen())", "QGLWidget": "QOpenGLWidget",
    "QMatrix": "QTransform", "QTextCodec": "Python's codecs", "QStringRef": "str", "QSound": "QSoundEffect",
    "QWebView": "QgsWebView or a browser", "QtWebKit": "QtWebEngine", "QtWebKitWidgets": "QtWebEngineWidgets",
}
MOVED_TO_QTGUI = {"QAction", "QActionGroup", "QShortcut", "QUndoCommand", "QUndoStack", "QFileSystemModel"}

Finding = Tuple[int, str]


def _dotted_chains(source: str) -> Iterator[Tuple[int, List[str], str]]:
    """(line, [name, attribute, ...], the token after the chain) for every dotted name in the code."""
    tokens = [token for token in tokenize.generate_tokens(io.StringIO(source).readline)
              if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                    tokenize.DEDENT)]
    index = 0
    while index < len(tokens):
        token = tokens[index]
        previous = tokens[index - 1].string if index else ""
        if token.type != tokenize.NAME or previous == ".":
            index += 1
            continue
        chain = [token.string]
        index += 1
        while index + 1 < len(tokens) and tokens[index].string == "." and tokens[index + 1].type == tokenize.NAME:
            chain.append(tokens[index + 1].string)
            index += 2
        following = tokens[index].string if index < len(tokens) else ""
        yield token.start[0], chain, following


def check_source(source: str) -> List[Finding]:
    """Every Qt6 problem in a module's source, as (line, message), in line order."""
    findings = []
    for line, chain, following in _dotted_chains(source):
        for name in chain:
            if name in REMOVED_CLASSES:
                findings.append((line, f"{name} is gone in Qt6: use {REMOVED_CLASSES[name]}"))
        for name in chain[1:]:
            if name in RENAMED_METHODS:
                findings.append((line, f"{name}() is gone in Qt6: use {RENAMED_METHODS[name]}"))
        if len(chain) >= 2 and chain[0] == "QVariant":
            findings.append((line, f"QVariant.{chain[1]}: Qt6 has no QVariant types; use QMetaType.Type "
                                   f"(fers_qgis.compat.new_field for QgsField)"))
            continue
        if len(chain) >= 2 and following not in (".", "("):
            owner, member = chain[-2], chain[-1]
            if _QT_OWNER.match(owner) and member[0].isupper() and not _CONSTANT.match(member):
                findings.append((line, f"{owner}.{member}: unscoped enum; name its enum type "
                                       f"(e.g. Qt.AlignmentFlag.AlignLeft), or use fers_qgis.compat"))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("QtWidgets"):
            for alias in node.names:
                if alias.name in MOVED_TO_QTGUI:
                    findings.append((node.lineno, f"{alias.name} lives in QtGui in Qt6: import it from "
                                                  f"fers_qgis.compat"))
    return sorted(findings)


def python_files(paths) -> Iterator[str]:
    for path in paths:
        if os.path.isfile(path):
            yield path
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
            yield from (os.path.join(folder, name) for name in sorted(files) if name.endswith(".py"))


def check_paths(paths) -> List[str]:
    """'file:line: message' for every problem in the Python files under ``paths``, exempt files left out."""
    report = []
    for path in python_files(paths):
        relative = os.path.relpath(os.path.abspath(path), REPOSITORY)
        if relative in EXEMPT:
            continue
        with open(path, encoding="utf-8") as handle:
            report += [f"{relative}:{line}: {message}" for line, message in check_source(handle.read())]
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[os.path.join(REPOSITORY, "fers_qgis")])
    report = check_paths(parser.parse_args(argv).paths)
    print("\n".join(report) if report else "No Qt5-only code found.")
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main())
