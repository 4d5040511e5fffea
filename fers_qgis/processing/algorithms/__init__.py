"""The FERS Processing algorithms, one per module; the provider registers every class in ALGORITHMS."""
from .detect_fers import DetectAnomaliesFers
from .detect_rx import DetectAnomaliesRx
from .enhance_features import EnhanceFeaturesFers
from .evaluate_map import EvaluateAnomalyMap
from .import_product import ImportHyperspectralProduct

ALGORITHMS = (DetectAnomaliesRx, DetectAnomaliesFers, EnhanceFeaturesFers, EvaluateAnomalyMap,
              ImportHyperspectralProduct)
