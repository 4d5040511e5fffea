"""Fixtures for the Processing tests."""
import pytest
from qgis.core import QgsLayerTreeModel, QgsProject
from qgis.gui import QgsLayerTreeView


@pytest.fixture(autouse=True)
def layer_tree_view(qgis_iface, monkeypatch):
    """A real layer tree view on the project, as the desktop's iface has: QGIS 3.44 loads Processing results
    through iface.layerTreeView(), which pytest-qgis's iface only mocks."""
    view = QgsLayerTreeView()
    view.setModel(QgsLayerTreeModel(QgsProject.instance().layerTreeRoot(), view))
    monkeypatch.setattr(qgis_iface, "layerTreeView", lambda: view, raising=False)
    return view
