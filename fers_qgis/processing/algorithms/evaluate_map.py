"""Evaluate anomaly map: the Processing face of `fers_qgis.core.evaluation`."""
from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from ...core.errors import FersError
from ...core.evaluation import evaluate_map, write_report
from ..feedback import FeedbackProgress
from ..roc_figure import write_roc_png
from .base import REFERENCES, FersAlgorithm


class EvaluateAnomalyMap(FersAlgorithm):
    """Scores a detector's map against labelled ground truth, for researchers comparing detectors."""

    ALGORITHM_ID = "evaluateanomalymap"
    DISPLAY_NAME = "Evaluate anomaly map"
    TAGS = "roc,auc,evaluation,ground truth,anomaly,accuracy,benchmark"
    SHORT_DESCRIPTION = "ROC AUC and a report with the ROC curve of an anomaly score map against ground truth."
    ICON = "evaluate_map.svg"
    HELP_SECTION = "evaluate-anomaly-map"

    SCORES = "SCORES"
    TRUTH = "TRUTH"
    MASK = "MASK"
    REPORT = "REPORT"
    CURVE = "CURVE"
    AUC = "AUC"
    FALSE_ALARM_AUC = "FALSE_ALARM_AUC"

    def shortHelpString(self):  # noqa: N802 (QGIS API)
        return self.tr(
            "Compares an anomaly score map (band 1; higher = more anomalous) with a ground-truth raster on the same "
            "pixel grid, where 1 marks anomaly pixels and any other value background. Nodata pixels of either "
            "raster are left out.\n"
            "<b>Valid-pixel mask</b> (optional input): a raster on the same grid; only pixels where it is non-zero "
            "are evaluated.\n\n"
            "<b>ROC AUC</b>: the area under detection rate vs false-alarm rate over all thresholds, i.e. the "
            "probability that an anomaly pixel outscores a background pixel (ties count one half). Higher is "
            "better; 0.5 is chance.\n"
            "<b>False-alarm AUC</b>: the area under the false-alarm rate as a function of the threshold on scores "
            "scaled to 0-1, as in the hyperspectral anomaly detection literature (AUC(F, tau)); lower is better.\n"
            "<b>Report</b>: an HTML page with both figures and the ROC curve (open it from the Processing results "
            "viewer); <b>ROC curve image</b>: a PNG figure with the curve, its axes and both AUCs, loaded into the "
            "project as an image layer when run from the dialog (zoom to the layer to read it).\n\n"
            "The score band is read whole (about 50 bytes per pixel while ranking).") + REFERENCES

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer(self.SCORES, self.tr("Anomaly score map")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.TRUTH, self.tr("Ground truth (1 = anomaly)")))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.MASK, self.tr("Valid-pixel mask (optional input; non-zero = evaluate the pixel)"), optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, self.tr("Evaluation report"), fileFilter=self.tr("HTML files (*.html)")))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.CURVE, self.tr("ROC curve image"), fileFilter=self.tr("PNG images (*.png)")))
        self.addOutput(QgsProcessingOutputNumber(self.AUC, self.tr("ROC AUC")))
        self.addOutput(QgsProcessingOutputNumber(self.FALSE_ALARM_AUC, self.tr("False-alarm AUC")))

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API)
        problem = self.unreadable_raster(parameters, context, (self.SCORES, self.TRUTH, self.MASK))
        return (False, problem) if problem else super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        paths = {name: self.raster_source(parameters, name, context)[1]
                 for name in (self.SCORES, self.TRUTH, self.MASK)}
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        curve = self.parameterAsFileOutput(parameters, self.CURVE, context)
        progress = FeedbackProgress(feedback)
        try:
            evaluation = evaluate_map(paths[self.SCORES], paths[self.TRUTH], paths[self.MASK])
            write_roc_png(evaluation, curve)
            write_report(evaluation, report, curve)
        except (FersError, OSError) as error:
            raise QgsProcessingException(str(error)) from error
        if context.project() is not None:
            # QGIS 3.22's results viewer only links the report: the figure itself goes into the project.
            scores_name = self.parameterAsRasterLayer(parameters, self.SCORES, context).name()
            context.addLayerToLoadOnCompletion(curve, QgsProcessingContext.LayerDetails(
                self.tr("ROC curve of {} (AUC {:.4f})").format(scores_name, evaluation.auc), context.project(),
                self.CURVE))
        progress.info(self.tr("ROC AUC {:.4f}, false-alarm AUC {:.4f} ({} anomaly and {} background pixels).").format(
            evaluation.auc, evaluation.false_alarm_auc, evaluation.anomaly_pixels, evaluation.background_pixels))
        progress.set_fraction(1.0)
        return {self.AUC: evaluation.auc, self.FALSE_ALARM_AUC: evaluation.false_alarm_auc, self.REPORT: report,
                self.CURVE: curve}
