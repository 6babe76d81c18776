"""Evaluation: weighted kNN vote and linear probe on synthetic features."""

from __future__ import annotations

import torch

from image.evaluate import encode, knn_accuracy, knn_predict, linear_probe
from image.model import ResNet


def _clusters(per_class: int, num_classes: int, dim: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    centres = torch.eye(dim)[:num_classes] * 5
    return centres[labels] + noise * torch.randn(labels.shape[0], dim, generator=generator), labels


def test_knn_on_separable_features_is_perfect() -> None:
    bank, bank_labels = _clusters(100, 4, 16, noise=0.5, seed=0)
    queries, labels = _clusters(50, 4, 16, noise=0.5, seed=1)
    assert knn_accuracy(bank, bank_labels, queries, labels, num_classes=4, k=200, temperature=0.5) == 100.0


def test_knn_votes_are_weighted_by_similarity() -> None:
    # One very close neighbour of class 0 against two distant ones of class 1: a plain
    # majority says 1, the exp(cos / t) weights say 0 (e^{9.9} > 2 e^{1}).
    query = torch.tensor([[1.0, 0.0]])
    bank = torch.tensor([[0.99, (1 - 0.99**2) ** 0.5], [0.1, (1 - 0.01) ** 0.5], [0.1, -((1 - 0.01) ** 0.5)]])
    labels = torch.tensor([0, 1, 1])
    assert knn_predict(bank, labels, query, num_classes=2, k=3, temperature=0.1).item() == 0
    assert knn_predict(bank, labels, query, num_classes=2, k=3, temperature=100.0).item() == 1
    assert knn_predict(bank, labels, query, num_classes=2, k=1, temperature=100.0).item() == 0


def test_linear_probe_learns_separable_features() -> None:
    train, train_labels = _clusters(60, 3, 8, noise=1.0, seed=0)
    test, test_labels = _clusters(30, 3, 8, noise=1.0, seed=1)
    accuracy = linear_probe(train, train_labels, test, test_labels, num_classes=3, epochs=30, lr=1e-2, batch_size=32)
    assert accuracy >= 95.0
    untrained = linear_probe(train, train_labels, test, test_labels, num_classes=3, epochs=0)
    assert untrained < 80.0


def test_encode_is_batch_size_independent_and_restores_training_mode() -> None:
    encoder = ResNet("resnet18", 4).train()
    images = torch.randint(0, 256, (10, 3, 16, 16), dtype=torch.uint8)
    whole = encode(encoder, images, batch_size=10)
    pieces = encode(encoder, images, batch_size=3)
    assert whole.shape == (10, encoder.feature_dim)
    assert torch.allclose(whole, pieces, atol=1e-5)
    assert encoder.training
