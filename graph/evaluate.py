"""SVM evaluation of frozen graph embeddings (the InfoGraph/HCL protocol).

Stratified 10-fold cross-validation; in every training fold, C is chosen from
{1e-3, ..., 1e3} by a 5-fold grid search; the score is the mean test-fold accuracy.
Folds come from ``seed``, so equal embeddings give equal numbers.
"""

from __future__ import annotations

import numpy as np

C_GRID = (0.001, 0.01, 0.1, 1, 10, 100, 1000)


def _fold_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> float:
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    inner = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    search = GridSearchCV(SVC(), {"C": list(C_GRID)}, cv=inner, scoring="accuracy")
    search.fit(x[train], y[train])
    return float((search.predict(x[test]) == y[test]).mean())


def svm_accuracy(embeddings: np.ndarray, labels: np.ndarray, *, seed: int = 0, n_jobs: int = 1, folds: int = 10) -> float:
    """Mean 10-fold accuracy of an RBF SVM with C tuned by inner cross-validation."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import StratifiedKFold

    outer = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(outer.split(embeddings, labels))
    scores = Parallel(n_jobs=n_jobs)(delayed(_fold_accuracy)(embeddings, labels, tr, te, seed) for tr, te in splits)
    return float(np.mean(scores))
