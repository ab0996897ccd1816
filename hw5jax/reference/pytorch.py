"""The homework's way, written plainly in PyTorch: its networks as `torch.nn` modules and its
training loop (eager, `torch.optim`, a shuffled index loop over in-memory float tensors).

Used by `hw5jax.bench` (the speed comparison, hw5jax's weights loaded into the torch
modules) and `experiments.cnn_torch` (the homework's CNN recipe trained in PyTorch from
PyTorch's own initialisation, the reference for what that recipe scores). torch is optional:
`pip install torch==2.13.0` (a CPU build); `import_torch` returns None without it.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from hw5jax.models.cnn import MNIST_MEAN, MNIST_STD

TORCH_INSTALL = "pip install torch==2.13.0"


def import_torch(threads: int | None = None):
    """torch with `threads` intra-op threads (default os.cpu_count(), PyTorch's own default and
    the homework's setting), or None if torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads or os.cpu_count() or 1)
    return torch


def torch_mlp(torch, params, layers=(784, 100, 100, 10)) -> Any:
    """A ReLU torch.nn.Sequential with hw5jax MLP weights (Linear stores [out, in]: kernel.T)."""
    nn = torch.nn
    dense = params["dense"]
    modules: list[Any] = []
    for i in range(len(layers) - 1):
        linear = nn.Linear(layers[i], layers[i + 1])
        _load(torch, linear, dense[i]["kernel"].T, dense[i]["bias"])
        modules += [linear, nn.ReLU()] if i < len(layers) - 2 else [linear]
    return nn.Sequential(nn.Flatten(), *modules)


def torch_cnn(torch, params=None, channels=(32, 64), hidden=(100, 100), kernel: int = 5) -> Any:
    """The homework CNN as PyTorch writes it (NCHW; conv-ReLU-pool twice, then dense layers
    with ReLU), for 28x28x1 images. With `params` (hw5jax's CNN parameters) it takes those
    weights: conv HWIO -> OIHW; the first dense layer's inputs reordered from NHWC-flatten
    (h, w, c) to NCHW-flatten (c, h, w). Without, it keeps PyTorch's default initialisation
    (drawn from torch's global generator: seed it with `torch.manual_seed`)."""
    nn = torch.nn
    c1, c2 = channels
    convs = [
        nn.Conv2d(1, c1, kernel, padding=kernel // 2),
        nn.Conv2d(c1, c2, kernel, padding=kernel // 2),
    ]
    widths = [7 * 7 * c2, *hidden, 10]
    dense = [nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:], strict=True)]
    if params is not None:
        for conv, p in zip(convs, params["convs"].values(), strict=True):
            _load(torch, conv, np.transpose(p["kernel"], (3, 2, 0, 1)), p["bias"])
        for i, (linear, p) in enumerate(zip(dense, params["dense"].values(), strict=True)):
            w = np.asarray(p["kernel"])
            if i == 0:
                w = w.reshape(7, 7, c2, -1).transpose(2, 0, 1, 3).reshape(7 * 7 * c2, -1)
            _load(torch, linear, w.T, p["bias"])
    layers: list[Any] = [
        convs[0],
        nn.ReLU(),
        nn.MaxPool2d(2),
        convs[1],
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    ]
    for linear in dense[:-1]:
        layers += [linear, nn.ReLU()]
    return nn.Sequential(*layers, dense[-1])


def _load(torch, module, weight, bias) -> None:
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.array(weight, np.float32)))
        module.bias.copy_(torch.from_numpy(np.array(bias, np.float32)))


def torch_optimizer(torch, name: str, model, learning_rate: float):
    """torch.optim.SGD (`name` "sgd") or torch.optim.Adam (anything else), defaults otherwise."""
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=learning_rate)
    return torch.optim.Adam(model.parameters(), lr=learning_rate)


def torch_epoch(
    torch,
    model,
    optimizer,
    images,
    labels,
    order=None,
    steps=None,
    batch_size: int = 128,
    drop_last: bool = True,
    scheduler=None,
) -> float:
    """The homework's epoch: shuffle indices, slice a batch of in-memory tensors, step.
    `order` (int[steps, batch]) replaces the shuffle (parity checks). `drop_last=False` also
    trains on the last, short batch (what a `DataLoader(shuffle=True)` does). `scheduler`
    (a `torch.optim.lr_scheduler`) is stepped after every optimizer step. The shuffle is
    drawn on the images' device. Returns the mean cost over the steps."""
    loss_fn = torch.nn.functional.cross_entropy
    if order is None:
        perm = torch.randperm(images.shape[0], device=images.device)
        if drop_last:
            full = images.shape[0] // batch_size
            steps = full if steps is None else min(steps, full)
            order = perm[: steps * batch_size].view(steps, batch_size)
        else:
            order = perm.split(batch_size)[:steps]
    model.train()
    total = 0.0
    for idx in order:
        x, y = images[idx], labels[idx]
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item()
    return total / len(order)


def torch_accuracy(torch, model, images, labels, batch_size: int = 1000) -> float:
    """Fraction of `images` (a float tensor as `torch_tensors` makes) classified as `labels`,
    in evaluation mode, without gradients."""
    if len(labels) == 0:
        return float("nan")
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            logits = model(images[start : start + batch_size])
            correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    return correct / len(labels)


def torch_tensors(
    torch,
    images: np.ndarray,
    labels: np.ndarray,
    nchw: bool,
    normalize: bool = False,
    device: str = "cpu",
):
    """uint8 NHWC -> float32 in [0, 1] (NCHW for the CNN, flat for the MLP), int64 labels: the
    homework keeps its data in memory as float tensors, converted once. `normalize`:
    standardised with MNIST's mean and std, as `transforms.Normalize((0.1307,), (0.3081,))`.
    `device`: where the tensors live (e.g. "cuda")."""
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    if normalize:
        x = (x - MNIST_MEAN) / MNIST_STD
    x = x.permute(0, 3, 1, 2).contiguous() if nchw else x.reshape(len(x), -1)
    return x.to(device), torch.from_numpy(labels.astype(np.int64)).to(device)


def train_cnn(torch, hp: dict[str, Any], data, seed: int, on_epoch) -> dict[str, Any]:
    """The homework's CNN trained the homework's way from PyTorch's own initialisation
    (`torch.manual_seed(seed)`): Adam, a fresh shuffle every epoch, the last short batch kept.
    `hp`: epochs, batch_size, learning_rate, channels, hidden. `data`: (train, val, test),
    each (images, labels) from `torch_tensors`. `on_epoch(epoch, val_accuracy, train_cost)`
    after each epoch. Returns {"test": accuracy, "history": {"train_cost", "val_accuracy"} per epoch
    (NaN when val is empty), "seconds": training and evaluation time, "model": the trained
    torch module}."""
    (x, y), (vx, vy), (tx, ty) = data
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = torch_cnn(torch, None, hp["channels"], hp["hidden"])
    optimizer = torch_optimizer(torch, "adam", model, hp["learning_rate"])
    history: dict[str, list[float]] = {"train_cost": [], "val_accuracy": []}
    for epoch in range(1, hp["epochs"] + 1):
        history["train_cost"].append(
            torch_epoch(torch, model, optimizer, x, y, batch_size=hp["batch_size"], drop_last=False)
        )
        history["val_accuracy"].append(torch_accuracy(torch, model, vx, vy))
        on_epoch(epoch, history["val_accuracy"][-1], history["train_cost"][-1])
    return {
        "test": torch_accuracy(torch, model, tx, ty),
        "history": history,
        "seconds": time.perf_counter() - t0,
        "model": model,
    }
