"""SVM evaluation of frozen graph embeddings (the InfoGraph/HCL protocol).

Stratified 10-fold cross-validation; in every training fold, C is chosen from
{1e-3, ..., 1e3} by a 5-fold grid search; the score is the mean test-fold accuracy.
Folds come from ``seed``, so equal embeddings give equal numbers.

The classifier is scikit-learn's RBF ``SVC`` with ``gamma="scale"``, exactly as
``GridSearchCV(SVC(), {"C": C_GRID}, cv=5)`` would fit it, but the kernel is computed
once from all pairwise squared distances and handed to libsvm precomputed: each of the
360 fits then costs a matrix lookup instead of recomputing the kernel (each fit about 4x
faster, a whole evaluation 2-3x on 2 cores).
"""

from __future__ import annotations

import numpy as np

from common.errors import UserError

C_GRID = (0.001, 0.01, 0.1, 1, 10, 100, 1000)
FOLDS = 10


def check_labels(labels: np.ndarray, what: str, folds: int = FOLDS) -> None:
    """``UserError`` naming ``what`` unless stratified ``folds``-fold CV can score these labels: two classes or more,
    each with a graph in every fold, so no test fold holds a class its training folds lack. Checked before training."""
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2:
        raise UserError(f"{what}: every graph has the same label; the SVM evaluation needs two classes or more")
    if len(labels) < folds:
        raise UserError(f"{what} has {len(labels)} graphs, fewer than the {folds} folds of the SVM evaluation")
    small = int(counts.argmin())
    if counts[small] < folds:
        raise UserError(f"{what}: its smallest class has {counts[small]} graph(s), fewer than the {folds} folds of the "
                        "SVM evaluation, so some test folds would hold a class their training folds lack")


def _squared_distances(x: np.ndarray) -> np.ndarray:
    """(n, n) float64 squared Euclidean distances, via one matrix product."""
    x = x.astype(np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)


def _fit_predict(x: np.ndarray, d2: np.ndarray, y: np.ndarray, fit: np.ndarray, query: np.ndarray, c: float) -> np.ndarray:
    """Predictions for ``query`` of an RBF SVC fitted on ``fit``; gamma="scale" from the fitted rows, as sklearn."""
    from sklearn.svm import SVC

    gamma = 1.0 / (x.shape[1] * x[fit].var())
    svc = SVC(C=c, kernel="precomputed").fit(np.exp(-gamma * d2[np.ix_(fit, fit)]), y[fit])
    return svc.predict(np.exp(-gamma * d2[np.ix_(query, fit)]))


def _fold_accuracy(x: np.ndarray, d2: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> float:
    """Accuracy on ``test`` with C picked by stratified 5-fold CV on ``train`` (ties: the smaller C, as GridSearchCV)."""
    from sklearn.model_selection import StratifiedKFold

    inner = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=seed).split(train, y[train]))
    scores = [
        np.mean([(_fit_predict(x, d2, y, train[fit], train[val], c) == y[train[val]]).mean() for fit, val in inner])
        for c in C_GRID
    ]
    best = C_GRID[int(np.argmax(scores))]
    return float((_fit_predict(x, d2, y, train, test, best) == y[test]).mean())


def svm_accuracy(embeddings: np.ndarray, labels: np.ndarray, *, seed: int = 0, n_jobs: int = 1, folds: int = 10) -> float:
    """Mean 10-fold accuracy of an RBF SVM with C tuned by inner cross-validation."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import StratifiedKFold

    d2 = _squared_distances(embeddings)
    outer = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(outer.split(embeddings, labels))
    scores = Parallel(n_jobs=n_jobs)(delayed(_fold_accuracy)(embeddings, d2, labels, tr, te, seed) for tr, te in splits)
    return float(np.mean(scores))
