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


def roc_curve(scores: np.ndarray, labels: np.ndarray):
    """(false-alarm rates, detection rates, thresholds) at every distinct score, from the highest down; both rates
    start at 0 and end at 1."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(labels).ravel().astype(bool)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_positive = scores[order], positive[order]
    last_of_group = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    true_positives = np.cumsum(sorted_positive)[last_of_group]
    false_positives = np.cumsum(~sorted_positive)[last_of_group]
    detection = np.r_[0.0, true_positives / max(int(positive.sum()), 1)]
    false_alarm = np.r_[0.0, false_positives / max(int((~positive).sum()), 1)]
    return false_alarm, detection, np.r_[np.inf, sorted_scores[last_of_group]]


def false_alarm_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """AUC(F, tau): the area under the false-alarm rate as a function of the threshold on min-max scaled scores
    (lower is better: the background stays quiet at most thresholds), as reported in the HAD literature."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    low, high = scores.min(), scores.max()
    scaled = (scores - low) / (high - low) if high > low else np.zeros_like(scores)
    false_alarm, _, thresholds = roc_curve(scaled, labels)
    # P_F(tau) is a step function of tau: the false-alarm rate at tau is that of the lowest threshold >= tau.
    taus, rates = thresholds[1:][::-1], false_alarm[1:][::-1]   # ascending thresholds in [0, 1]
    widths = np.diff(np.r_[0.0, taus])
    return float(np.sum(widths * rates))
