"""Evaluation of a frozen encoder: weighted kNN monitor and linear probe.

Both work on features computed once from the un-augmented images (the released code's
test transform: normalisation only). The kNN monitor is the released code's: cosine
similarity to every training feature, the k nearest vote with weight exp(cos / t).
The linear probe trains one ``nn.Linear`` on the precomputed features; the released
``linear.py`` instead runs the frozen network on augmented images every epoch, which
costs a forward pass per image per epoch and is out of reach on a CPU.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from image.config import ImageConfig
from image.data import ImageData, normalize


@torch.no_grad()
def encode(
    encoder: nn.Module,
    images: Tensor,
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    bf16: bool = False,
    channels_last: bool = False,
) -> Tensor:
    """Float32 features ``(N, d)`` on ``device`` of uint8 images ``(N, 3, H, W)``, encoder in eval mode."""
    device = torch.device(device)
    was_training = encoder.training
    encoder.eval()
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        batch = normalize(images[start : start + batch_size].to(device, non_blocking=True))
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            chunks.append(encoder(batch).float())
    encoder.train(was_training)
    return torch.cat(chunks)


@torch.no_grad()
def knn_predict(
    bank: Tensor,
    bank_labels: Tensor,
    queries: Tensor,
    *,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.5,
    chunk: int = 1024,
) -> Tensor:
    """Predicted class of every query: the k most similar bank entries vote with weight exp(cos / t)."""
    bank = F.normalize(bank, dim=1)
    k = min(k, bank.shape[0])
    predictions = []
    for start in range(0, queries.shape[0], chunk):
        similarity = F.normalize(queries[start : start + chunk], dim=1) @ bank.T
        top_similarity, top_index = similarity.topk(k, dim=1)
        votes = torch.zeros(similarity.shape[0], num_classes, device=similarity.device)
        votes.scatter_add_(1, bank_labels[top_index], (top_similarity / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)


def knn_accuracy(
    bank: Tensor, bank_labels: Tensor, queries: Tensor, labels: Tensor, *, num_classes: int, k: int = 200,
    temperature: float = 0.5,
) -> float:
    """Top-1 accuracy (percent) of :func:`knn_predict`."""
    predicted = knn_predict(bank, bank_labels.to(bank.device), queries, num_classes=num_classes, k=k,
                            temperature=temperature)
    return (predicted.cpu() == labels.cpu()).float().mean().item() * 100


def linear_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    *,
    num_classes: int,
    epochs: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 1e-6,
    batch_size: int = 256,
    seed: int = 0,
) -> float:
    """Final-epoch top-1 test accuracy (percent) of a linear classifier trained with Adam on frozen features."""
    generator = torch.Generator().manual_seed(seed)
    device = train_features.device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = nn.Linear(train_features.shape[1], num_classes).to(device)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr, weight_decay=weight_decay)
    train_labels = train_labels.to(device)
    for _ in range(epochs):
        order = torch.randperm(train_features.shape[0], generator=generator).to(device)
        for start in range(0, order.shape[0], batch_size):
            index = order[start : start + batch_size]
            loss = F.cross_entropy(classifier(train_features[index]), train_labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        predicted = classifier(test_features).argmax(dim=1)
    return (predicted.cpu() == test_labels.cpu()).float().mean().item() * 100


def evaluate_encoder(encoder: nn.Module, data: ImageData, cfg: ImageConfig, device: torch.device) -> dict[str, float]:
    """kNN and linear-probe top-1 (percent) on the test split, bank / probe data = labelled train split."""
    started = time.perf_counter()
    options = {"batch_size": cfg.eval_batch_size, "device": device, "bf16": cfg.bf16, "channels_last": cfg.channels_last}
    train_features = encode(encoder, data.train_images, **options)
    test_features = encode(encoder, data.test_images, **options)
    encode_s = time.perf_counter() - started
    knn = knn_accuracy(train_features, data.train_labels, test_features, data.test_labels,
                       num_classes=data.num_classes, k=cfg.knn_k, temperature=cfg.knn_temperature)
    linear = linear_probe(train_features, data.train_labels, test_features, data.test_labels,
                          num_classes=data.num_classes, epochs=cfg.linear_epochs, lr=cfg.linear_lr,
                          weight_decay=cfg.linear_weight_decay, batch_size=cfg.linear_batch_size, seed=cfg.seed)
    return {"knn_top1": knn, "linear_top1": linear, "encode_s": encode_s, "eval_s": time.perf_counter() - started}
