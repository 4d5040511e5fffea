"""The layers of docs/ARCHITECTURE.md, checked on the source: the engine (fers_qgis/core) imports nothing of the
plugin around it, and the adapters use only its public names."""
import ast
import pathlib

import pytest

PLUGIN = pathlib.Path(__file__).resolve().parents[1] / "fers_qgis"
CORE = PLUGIN / "core"
# Past this a module holds more than one thing; split it where the code asks for it.
MAX_MODULE_LINES = 600


def imports(path: pathlib.Path):
    """(absolute module, imported names) of every import in a file of the plugin package."""
    package = ".".join(("fers_qgis",) + path.relative_to(PLUGIN).parent.parts)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            yield module, tuple(alias.name for alias in node.names)


def modules(folder: pathlib.Path):
    return sorted(folder.rglob("*.py"))


@pytest.mark.parametrize("path", modules(CORE), ids=lambda path: str(path.relative_to(PLUGIN)))
def test_the_core_imports_nothing_of_qgis_or_the_adapters(path):
    for module, _ in imports(path):
        assert not module.startswith(("qgis", "PyQt", "torch")), f"{path.name} imports {module}"
        if module.startswith("fers_qgis"):
            assert module.startswith("fers_qgis.core"), f"{path.name} imports {module}, outside the core"


@pytest.mark.parametrize("path", [path for path in modules(PLUGIN) if CORE not in path.parents],
                         ids=lambda path: str(path.relative_to(PLUGIN)))
def test_adapters_use_only_public_core_names(path):
    for module, names in imports(path):
        if module.startswith("fers_qgis.core"):
            assert not any(part.startswith("_") for part in module.split(".")), f"{path.name} imports {module}"
            private = [name for name in names if name.startswith("_")]
            assert not private, f"{path.name} imports private {', '.join(private)} from {module}"


def test_no_module_of_the_plugin_is_longer_than_the_limit():
    long = {str(path.relative_to(PLUGIN)): lines for path in modules(PLUGIN)
            if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
