"""ROC AUC from ranks equals the pairwise definition, ties counting one half."""
import numpy as np
import pytest

from fers_qgis.core.errors import InputError
from fers_qgis.core.metrics import roc_auc


def pairwise_auc(scores, labels):
    positives, negatives = scores[labels], scores[~labels]
    wins = (positives[:, None] > negatives[None, :]).sum() + 0.5 * (positives[:, None] == negatives[None, :]).sum()
    return wins / (positives.size * negatives.size)


@pytest.mark.parametrize("seed", range(5))
def test_rank_auc_equals_pairwise_auc_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=300).astype(float)  # many ties
    labels = rng.random(300) < 0.2
    assert roc_auc(scores, labels) == pytest.approx(pairwise_auc(scores, labels), abs=1e-12)


def test_perfect_inverted_and_constant_scores():
    labels = np.array([0, 0, 1, 1], dtype=bool)
    assert roc_auc(np.array([1.0, 2.0, 3.0, 4.0]), labels) == 1.0
    assert roc_auc(np.array([4.0, 3.0, 2.0, 1.0]), labels) == 0.0
    assert roc_auc(np.ones(4), labels) == 0.5


def test_auc_needs_both_classes():
    with pytest.raises(InputError):
        roc_auc(np.arange(4.0), np.zeros(4, dtype=bool))
