"""Detection metrics computed with numpy alone (no scikit-learn inside QGIS)."""
import numpy as np

from .errors import InputError


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Pixel ROC AUC: the probability that an anomaly outscores a background pixel, ties counting one half.

    Computed from average ranks (the Mann-Whitney U statistic), which equals the trapezoidal area under the
    ROC curve that scikit-learn's ``roc_auc_score`` reports.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(labels).ravel().astype(bool)
    positives = int(positive.sum())
    negatives = positive.size - positives
    if positives == 0 or negatives == 0:
        raise InputError("ROC AUC needs both anomaly and background pixels in the ground truth.")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # Average rank per group of tied scores: ranks are 1-based positions, each tie group gets its mean position.
    group_starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    group_ends = np.r_[group_starts[1:], sorted_scores.size]
    group_ranks = (group_starts + group_ends + 1) / 2.0
    ranks = np.empty(scores.size, dtype=np.float64)
    ranks[order] = np.repeat(group_ranks, group_ends - group_starts)
    u_statistic = ranks[positive].sum() - positives * (positives + 1) / 2.0
    return float(u_statistic / (positives * negatives))
