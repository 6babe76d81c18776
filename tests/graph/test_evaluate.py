"""The SVM evaluator."""

from __future__ import annotations

import numpy as np
import pytest

from graph.evaluate import svm_accuracy
from tests.graph.conftest import STAGED


def test_evaluator_is_deterministic_and_separates_separable_data():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    separable = rng.normal(size=(60, 4)) + 6 * labels[:, None]
    assert svm_accuracy(separable, labels, seed=0, folds=5) == 1.0
    noise = rng.normal(size=(60, 4))
    first = svm_accuracy(noise, labels, seed=3, folds=5)
    assert first == svm_accuracy(noise, labels, seed=3, folds=5) and first < 0.8


@pytest.mark.skipif(not (STAGED / "tu" / "MUTAG" / "raw").is_dir(), reason="staged MUTAG not present")
def test_precomputed_kernel_evaluator_equals_sklearn_grid_search():
    """The fast evaluator is the released protocol: GridSearchCV(SVC(), C grid, cv=5) inside stratified 10-fold CV."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    from graph.evaluate import C_GRID

    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 30)
    x = rng.normal(size=(90, 6)) * 40 + 25 * labels[:, None] * rng.normal(size=6)  # overlapping, unscaled classes
    for seed in (0, 1):
        expected = []
        for train, test in StratifiedKFold(10, shuffle=True, random_state=seed).split(x, labels):
            search = GridSearchCV(SVC(), {"C": list(C_GRID)}, cv=StratifiedKFold(5, shuffle=True, random_state=seed))
            expected.append((search.fit(x[train], labels[train]).predict(x[test]) == labels[test]).mean())
        assert svm_accuracy(x, labels, seed=seed) == pytest.approx(np.mean(expected), abs=1e-12)
        assert 0.4 < np.mean(expected) < 0.95  # neither trivial nor chance: the C choice matters
