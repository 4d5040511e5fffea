"""The FERS Processing algorithms, one per module; the provider registers every class in ALGORITHMS."""
from .detect_rx import DetectAnomaliesRx

ALGORITHMS = (DetectAnomaliesRx,)
