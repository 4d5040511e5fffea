"""What the detection algorithms share after scoring: a ground-truth-free threshold, an anomaly mask raster and
a vector layer of anomaly objects, all optional, plus the naming, styling and stacking of the loaded outputs."""
import os
from typing import Optional

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureSink,
    QgsFields,
    QgsGeometry,
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ...compat import NUMBER_DOUBLE, SOURCE_VECTOR_POLYGON, WKB_MULTIPOLYGON, new_field
from ...core import objects
from ...core.errors import FersError
from ...core.progress import Stage
from ...core.raster import describe_raster
from ..styling import RunLayers, style_mask, style_objects, style_scores

THRESHOLD_RULE_LABELS = {"top-percent": "Top percent of valid pixels", "score": "Fixed score"}
OBJECT_FIELDS = (("id", int), ("pixels", int), ("area", float), ("peak_score", float), ("mean_score", float),
                 ("centroid_x", float), ("centroid_y", float), ("peak_x", float), ("peak_y", float))
# What each output is called after the run's label in the layers panel.
LAYER_KINDS = {"scores": "anomaly scores", "mask": "anomaly mask", "objects": "anomaly objects"}


DECISION_HELP = (
    "<b>Anomaly mask / anomaly objects</b> (optional outputs): pixels whose score reaches a threshold, as a Byte "
    "raster (1 = anomaly, 0 = background, shown with a transparent background) and as polygons of 8-connected "
    "regions with their pixel count, area, peak and mean score, centroid and peak location (shown as red "
    "outlines above the scores).\n"
    "<b>Threshold rule</b>: <i>Top percent</i> (default) flags that percentage of the valid pixels, needing no "
    "ground truth; <i>Fixed score</i> flags pixels scoring at least the given value.\n"
    "<b>Threshold value</b>: a percentage (default 0.1, i.e. one pixel in a thousand) for <i>Top percent</i>, a "
    "score for <i>Fixed score</i>.\n")


def remove_files(paths) -> None:
    """Remove what a failed run wrote (a sink destination may carry '|layername=...')."""
    for path in paths:
        path = (path or "").split("|")[0]
        if path and os.path.isfile(path):
            os.remove(path)


class AnomalyDecisions:
    """Mixin for the detection algorithms (after QgsProcessingAlgorithm in the bases' order of use)."""

    THRESHOLD_RULE = "THRESHOLD_RULE"
    THRESHOLD = "THRESHOLD"
    ANOMALY_MASK = "ANOMALY_MASK"
    OBJECTS = "OBJECTS"

    def add_decision_parameters(self) -> None:
        """Declare the threshold rule and the two optional outputs; call at the end of initAlgorithm."""
        self.addParameter(QgsProcessingParameterEnum(
            self.THRESHOLD_RULE, self.tr("Anomaly threshold rule (for the anomaly mask and objects)"),
            options=[self.tr(label) for label in THRESHOLD_RULE_LABELS.values()], defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD, self.tr("Threshold value: percent of valid pixels (Top percent) or a score (Fixed score)"),
            type=NUMBER_DOUBLE, defaultValue=0.1))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.ANOMALY_MASK, self.tr("Anomaly mask (result: 1 = anomaly)"), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OBJECTS, self.tr("Anomaly objects (result: polygons)"), type=SOURCE_VECTOR_POLYGON, optional=True,
            createByDefault=False))

    def _rule(self, parameters, context):
        rule = list(THRESHOLD_RULE_LABELS)[self.parameterAsEnum(parameters, self.THRESHOLD_RULE, context)]
        return rule, self.parameterAsDouble(parameters, self.THRESHOLD, context)

    def wants_decisions(self, parameters, context) -> bool:
        """Whether a mask or objects were asked for (the batch dialog passes the ones left empty as '')."""
        return any(self.output_requested(parameters, name, context) for name in (self.ANOMALY_MASK, self.OBJECTS))

    def decision_problem(self, parameters, context) -> str:
        """The threshold must make sense when a mask or objects are asked for."""
        if not self.wants_decisions(parameters, context):
            return ""
        rule, value = self._rule(parameters, context)
        if rule == "top-percent" and not 0 < value < 100:
            return self.tr("The top percentage must lie between 0 and 100 (exclusive); got {}.").format(value)
        return self.geotiff_problem(parameters, context, (self.ANOMALY_MASK,))

    def run_layers(self, parameters, context, label: str, score_output: str, detail: str = "") -> RunLayers:
        """Name and style the scores Processing will load; the decisions join them in write_decisions."""
        layers = RunLayers(context, label, LAYER_KINDS.values(), detail)
        layers.load(score_output, LAYER_KINDS["scores"], self.given_name(parameters, "OUTPUT"), style_scores,
                    "scores")
        return layers

    def write_decisions(self, parameters, context, progress, score_path: str, mask_path: Optional[str], layer,
                        layers: RunLayers) -> dict:
        """Threshold the written scores into the requested mask and objects, and have them loaded.

        If anything fails here, the files this run wrote are removed, so a failed run leaves no file."""
        results = {}
        if not self.wants_decisions(parameters, context):
            return results
        written = [score_path]
        try:
            rule, value = self._rule(parameters, context)
            threshold = objects.threshold_for(score_path, rule, value, progress=Stage(progress, 0.0, 0.4))
            progress.info(self.tr("Anomaly threshold: score {:.6g}.").format(threshold))
            if mask_path:
                flagged = objects.write_mask(score_path, mask_path, threshold, progress=Stage(progress, 0.4, 0.7))
                written.append(mask_path)
                progress.info(self.tr("{} pixels flagged as anomalous.").format(flagged))
                layers.load(mask_path, LAYER_KINDS["mask"], self.given_name(parameters, self.ANOMALY_MASK),
                            style_mask, "mask")
                results[self.ANOMALY_MASK] = mask_path
            if self.output_requested(parameters, self.OBJECTS, context):
                found = objects.find_objects(score_path, threshold, progress=Stage(progress, 0.7, 1.0))
                results[self.OBJECTS] = self._write_objects(parameters, context, found, layer, written,
                                                            describe_raster(score_path).crs_wkt)
                layers.load(results[self.OBJECTS], LAYER_KINDS["objects"],
                            self.given_name(parameters, self.OBJECTS), style_objects, "objects")
                progress.info(self.tr("{} anomaly objects.").format(len(found)))
        except Exception as error:  # noqa: BLE001 (whatever failed, the run's files go; the error is re-raised)
            remove_files(written)
            if isinstance(error, FersError):
                raise QgsProcessingException(str(error)) from error
            raise
        return results

    def _write_objects(self, parameters, context, found, layer, written: list, crs_wkt: str) -> str:
        """Write the objects as MultiPolygons (what the core's polygons are) in the score raster's map coordinates:
        its CRS, or its ground control points' CRS; the destination joins ``written`` as soon as it exists."""
        fields = QgsFields()
        for name, python_type in OBJECT_FIELDS:
            fields.append(new_field(name, python_type))
        sink, destination = self.parameterAsSink(parameters, self.OBJECTS, context, fields, WKB_MULTIPOLYGON,
                                                 QgsCoordinateReferenceSystem.fromWkt(crs_wkt) if crs_wkt
                                                 else layer.crs())
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OBJECTS))
        written.append(destination)
        for item in found:
            feature = QgsFeature(fields)
            geometry = QgsGeometry.fromWkt(item.polygon_wkt)
            geometry.convertToMultiType()
            feature.setGeometry(geometry)
            feature.setAttributes([item.object_id, item.pixel_count, item.area, item.peak_score, item.mean_score,
                                   item.centroid_x, item.centroid_y, item.peak_x, item.peak_y])
            sink.addFeature(feature, QgsFeatureSink.Flag.FastInsert)
        del sink  # closes the file before Processing loads it
        return destination
