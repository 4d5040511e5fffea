"""What the detection algorithms share after scoring: a ground-truth-free threshold, an anomaly mask raster and
a vector layer of anomaly objects, all optional, plus the styling of the loaded outputs."""
import os

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ...core import objects
from ...core.errors import FersError
from ...core.progress import Stage
from ...core.raster import describe_raster
from ..styling import load_styled, style_mask, style_scores

THRESHOLD_RULE_LABELS = {"top-percent": "Top percent of valid pixels", "score": "Fixed score"}
OBJECT_FIELDS = (("id", QVariant.Int), ("pixels", QVariant.Int), ("area", QVariant.Double),
                 ("peak_score", QVariant.Double), ("mean_score", QVariant.Double), ("centroid_x", QVariant.Double),
                 ("centroid_y", QVariant.Double), ("peak_x", QVariant.Double), ("peak_y", QVariant.Double))


DECISION_HELP = (
    "<b>Anomaly mask / anomaly objects</b> (optional outputs): pixels whose score reaches a threshold, as a Byte "
    "raster (1 = anomaly, 0 = background, shown with a transparent background) and as polygons of 8-connected "
    "regions with their pixel count, area, peak and mean score, centroid and peak location.\n"
    "<b>Threshold rule</b>: <i>Top percent</i> (default) flags that percentage of the valid pixels, needing no "
    "ground truth (default 0.1%); <i>Fixed score</i> flags pixels scoring at least the given value.\n")


class AnomalyDecisions:
    """Mixin for the detection algorithms (after QgsProcessingAlgorithm in the bases' order of use)."""

    THRESHOLD_RULE = "THRESHOLD_RULE"
    THRESHOLD = "THRESHOLD"
    ANOMALY_MASK = "ANOMALY_MASK"
    OBJECTS = "OBJECTS"

    def add_decision_parameters(self) -> None:
        """Declare the threshold rule and the two optional outputs; call at the end of initAlgorithm."""
        self.addParameter(QgsProcessingParameterEnum(
            self.THRESHOLD_RULE, self.tr("Anomaly threshold rule (for the mask and objects)"),
            options=[self.tr(label) for label in THRESHOLD_RULE_LABELS.values()], defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD, self.tr("Threshold: percent of pixels flagged, or the score"),
            type=QgsProcessingParameterNumber.Double, defaultValue=0.1))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.ANOMALY_MASK, self.tr("Anomaly mask (1 = anomaly)"), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OBJECTS, self.tr("Anomaly objects"), type=QgsProcessing.TypeVectorPolygon, optional=True,
            createByDefault=False))

    def _rule(self, parameters, context):
        rule = list(THRESHOLD_RULE_LABELS)[self.parameterAsEnum(parameters, self.THRESHOLD_RULE, context)]
        return rule, self.parameterAsDouble(parameters, self.THRESHOLD, context)

    def wants_decisions(self, parameters, context) -> bool:
        return bool(self.parameterAsOutputLayer(parameters, self.ANOMALY_MASK, context)) or \
            parameters.get(self.OBJECTS) not in (None, "")

    def decision_problem(self, parameters, context) -> str:
        """The threshold must make sense when a mask or objects are asked for."""
        if not self.wants_decisions(parameters, context):
            return ""
        rule, value = self._rule(parameters, context)
        if rule == "top-percent" and not 0 < value < 100:
            return self.tr("The top percentage must lie between 0 and 100 (exclusive); got {}.").format(value)
        return self.geotiff_problem(parameters, context, (self.ANOMALY_MASK,))

    def write_decisions(self, parameters, context, progress, score_path: str, layer, what: str) -> dict:
        """Threshold the written scores into the requested mask and objects, style and name the loaded layers.

        If this fails, the score raster of the run is removed too, so a failed run leaves no outputs."""
        results = {}
        load_styled(context, score_path, self.tr("{} {} anomalies").format(layer.name(), what), style_scores)
        if not self.wants_decisions(parameters, context):
            return results
        rule, value = self._rule(parameters, context)
        mask_path = self.parameterAsOutputLayer(parameters, self.ANOMALY_MASK, context)
        try:
            threshold = objects.threshold_for(score_path, rule, value, progress=Stage(progress, 0.0, 0.4))
            progress.info(self.tr("Anomaly threshold: score {:.6g}.").format(threshold))
            if mask_path:
                flagged = objects.write_mask(score_path, mask_path, threshold, progress=Stage(progress, 0.4, 0.7))
                progress.info(self.tr("{} pixels flagged as anomalous.").format(flagged))
                load_styled(context, mask_path, self.tr("{} {} anomaly mask").format(layer.name(), what),
                            style_mask)
                results[self.ANOMALY_MASK] = mask_path
            if parameters.get(self.OBJECTS) not in (None, ""):
                found = objects.find_objects(score_path, threshold, progress=Stage(progress, 0.7, 1.0))
                results[self.OBJECTS] = self._write_objects(parameters, context, found, layer,
                                                            describe_raster(score_path).crs_wkt)
                progress.info(self.tr("{} anomaly objects.").format(len(found)))
        except FersError as error:
            for path in (score_path, mask_path):
                if path and os.path.exists(path):
                    os.remove(path)
            raise QgsProcessingException(str(error)) from error
        return results

    def _write_objects(self, parameters, context, found, layer, crs_wkt: str) -> str:
        """Objects in the score raster's map coordinates: its CRS, or its ground control points' CRS."""
        fields = QgsFields()
        for name, kind in OBJECT_FIELDS:
            fields.append(QgsField(name, kind))
        sink, destination = self.parameterAsSink(parameters, self.OBJECTS, context, fields, QgsWkbTypes.Polygon,
                                                 QgsCoordinateReferenceSystem.fromWkt(crs_wkt) if crs_wkt
                                                 else layer.crs())
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OBJECTS))
        for item in found:
            feature = QgsFeature(fields)
            feature.setGeometry(QgsGeometry.fromWkt(item.polygon_wkt))
            feature.setAttributes([item.object_id, item.pixel_count, item.area, item.peak_score, item.mean_score,
                                   item.centroid_x, item.centroid_y, item.peak_x, item.peak_y])
            sink.addFeature(feature, QgsFeatureSink.FastInsert)
        if context.willLoadLayerOnCompletion(destination):
            context.layerToLoadOnCompletionDetails(destination).name = self.tr("{} anomaly objects").format(
                layer.name())
        return destination
