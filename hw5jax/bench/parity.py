"""The checks that hw5jax and PyTorch compute the same training steps: from the same weights
over the same batches (hw5jax's own shuffle), the same costs, parameters and gradients.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hw5jax.bench.networks import BATCH, init_state
from hw5jax.core.train import Trainer
from hw5jax.reference.pytorch import torch_epoch, torch_optimizer, torch_tensors


def epoch_order(state: dict[str, Any], n: int, batch_size: int = BATCH) -> np.ndarray:
    """The batches `Trainer.epoch` will draw from `state` (int[steps, batch]): it splits
    state["rng"] into (next rng, permutation key, step key). Parity checks only; if the
    Trainer changes how it shuffles, the parity check fails loudly."""
    _, perm_key, _ = jax.random.split(state["rng"], 3)
    steps = n // batch_size
    order = jax.random.permutation(perm_key, n)[: steps * batch_size]
    return np.array(order).reshape(steps, batch_size)  # writable: torch.from_numpy wants it


def numpy_params(state: dict[str, Any]) -> dict:
    """The parameters of a training state as a nested dict of numpy arrays."""
    return jax.tree.map(np.asarray, nnx.to_pure_dict(state["params"]))


def parity(
    torch: Any,
    trainer: Trainer,
    make_torch: Any,
    learning_rate: float,
    images: np.ndarray,
    labels: np.ndarray,
    steps: int,
    nchw: bool,
    device: str = "cpu",
) -> dict[str, Any]:
    """Both sides from the same weights over the same `steps` batches (hw5jax's shuffle):
    mean training cost of each, and the largest |difference| of any parameter after.
    `device`: where the PyTorch side runs."""
    x, y = images[: steps * BATCH], labels[: steps * BATCH]
    state = init_state(trainer, learning_rate)
    start = numpy_params(state)
    order = epoch_order(state, len(y))
    grad_diff = gradient_parity(
        torch, trainer, state, make_torch, x[order[0]], y[order[0]], nchw, device
    )
    state, metrics = trainer.epoch_jit(state, jnp.asarray(x), jnp.asarray(y))
    end = numpy_params(state)
    model = make_torch(torch, start).to(device)
    opt = torch_optimizer(torch, trainer.optimizer, model, learning_rate)
    tx, ty = torch_tensors(torch, x, y, nchw, device=device)
    order_t = torch.from_numpy(order).to(device)
    torch_cost = torch_epoch(torch, model, opt, tx, ty, order=order_t)
    torch_end = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    ref = make_torch(torch, end).state_dict()
    diff = max(float(np.max(np.abs(torch_end[k] - ref[k].numpy()))) for k in torch_end)
    scale = max(float(np.max(np.abs(ref[k].numpy()))) for k in ref)
    return {
        "steps": steps,
        "hw5jax_cost": float(metrics["train_cost"]),
        "torch_cost": torch_cost,
        "max_param_diff": diff,
        "max_param_abs": scale,
        "max_rel_grad_diff": grad_diff,
    }


def gradient_parity(
    torch: Any,
    trainer: Trainer,
    state: dict[str, Any],
    make_torch: Any,
    images: np.ndarray,
    labels: np.ndarray,
    nchw: bool,
    device: str = "cpu",
) -> float:
    """Largest |torch grad - hw5jax grad| / max |hw5jax grad| over the parameters, on one
    batch from the same weights: the two sides compute the same function and derivative
    (PyTorch's on `device`)."""
    x = jnp.asarray(images).astype(jnp.float32) / 255.0

    def cost(params):
        return trainer.cost(
            params, state["model_state"], x, jnp.asarray(labels), jax.random.PRNGKey(0)
        )[0]

    grads = jax.tree.map(np.asarray, nnx.to_pure_dict(jax.grad(cost)(state["params"])))
    model = make_torch(torch, numpy_params(state)).to(device)
    tx, ty = torch_tensors(torch, images, labels, nchw, device=device)
    torch.nn.functional.cross_entropy(model(tx), ty).backward()
    # The jax gradients in torch's layout: the same conversion as the weights.
    ref = make_torch(torch, grads).state_dict()
    return max(
        float(
            np.max(np.abs(p.grad.cpu().numpy() - ref[k].numpy()))
            / (np.max(np.abs(ref[k].numpy())) + 1e-30)
        )
        for k, p in model.named_parameters()
    )
