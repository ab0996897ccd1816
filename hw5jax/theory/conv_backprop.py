"""Problem 5.1: backpropagation through conv -> max-pool -> dense, by hand vs jax.grad.

The homework's tiny network, its backpropagation equations written out by hand
(`conv_net_backprop`), checked against jax.grad; and two variants that show where the
homework's equations go wrong (an extra σ' at the pool; overlapping windows assigned instead of
summed).

    checks = check_conv_backprop(measure_conv_backprop())
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hw5jax.theory.checks import Check, float64
from hw5jax.theory.sigmoid import sigmoid, sigmoid_np

Array = jax.Array


# The homework's tiny network (one channel):
#   x      float[4, 4]   input
#   z^c    float[3, 3]   z^c_ij = Σ_pq W_pq x_(i+p)(j+q) + b_c   (2x2 filter, stride 1, "valid";
#                        cross-correlation, as every DL library computes a "convolution")
#   a^c    float[3, 3]   σ(z^c)
#   m      float[2, 2]   m_rs = max_(p,q in {0,1}) a^c_(r+p)(s+q)  (2x2 max-pool, stride 1:
#                        the windows overlap, the centre a^c_11 belongs to all four)
#   z^L    float[2]      W^L vec(m) + b^L          (W^L: float[2, 4])
#   a^L    float[2]      σ(z^L);   C = ||a^L - y||² / 2

CONV_PARAMS = ("W", "b_c", "W_L", "b_L")


def conv_net_cost(params: dict[str, Array], x: Array, y: Array) -> Array:
    """The cost C of the network above, written with jnp so jax.grad can differentiate it.
    params: W float[2,2], b_c float[], W_L float[2,4], b_L float[2]; x float[4,4]; y float[2]."""
    W = params["W"]
    z_c = sum(W[p, q] * x[p : p + 3, q : q + 3] for p in range(2) for q in range(2)) + params["b_c"]
    a_c = sigmoid(z_c)
    windows = jnp.stack([a_c[p : p + 2, q : q + 2] for p in range(2) for q in range(2)])
    m = jnp.max(windows, axis=0)  # float[2, 2]
    a_L = sigmoid(params["W_L"] @ m.reshape(4) + params["b_L"])
    return 0.5 * jnp.sum((a_L - y) ** 2)


def pool_routing(a_c: np.ndarray) -> np.ndarray:
    """The max-pool as a 0/1 matrix R: float[..., 4, 9], R[k, u] = 1 iff conv unit u (row-major
    in the 3x3 map) is the argmax of pooling window k (row-major in the 2x2 output), so that
    vec(m) = R vec(a^c).  a_c: float[..., 3, 3]."""
    batch = a_c.shape[:-2]
    R = np.zeros(batch + (4, 9))
    for k, (r, s) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        window = a_c[..., r : r + 2, s : s + 2].reshape(batch + (4,))
        p, q = np.divmod(np.argmax(window, axis=-1), 2)
        np.put_along_axis(R[..., k, :], ((r + p) * 3 + (s + q))[..., None], 1.0, axis=-1)
    return R


def conv_net_backprop(
    params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, variant: str = "correct"
) -> dict[str, np.ndarray]:
    """Problem 5.1: the backpropagation equations of the network above, written out by hand
    (numpy float64, batched over a leading axis N).

    params: W float[N,2,2], b_c float[N], W_L float[N,2,4], b_L float[N,2]; x float[N,4,4];
    y float[N,2].  Returns ∂C/∂(W, b_c, W_L, b_L) and ∂C/∂x, same shapes.

    variant: "correct"; "homework" (the homework's δ^pool = ((W^L)ᵀ δ^L) ⊙ σ'(z^pool): an extra
    σ' at the pooling layer, which has no activation of its own); "overwrite" (route each
    pooled δ to its argmax by assignment, so a unit that is the max of two windows gets one
    window's δ instead of the sum).
    """
    W, b_c, W_L, b_L = (params[k] for k in CONV_PARAMS)
    n = x.shape[0]
    # Feedforward.
    z_c = np.einsum(
        "npq,npqij->nij",
        W,
        np.stack(
            [np.stack([x[:, p : p + 3, q : q + 3] for q in range(2)], 1) for p in range(2)], 1
        ),
    )
    z_c = z_c + b_c[:, None, None]
    a_c = sigmoid_np(z_c)
    R = pool_routing(a_c)  # float[N, 4, 9]
    m = np.einsum("nku,nu->nk", R, a_c.reshape(n, 9))  # vec(m) = R vec(a^c)
    z_L = np.einsum("nok,nk->no", W_L, m) + b_L
    a_L = sigmoid_np(z_L)

    # BP1: δ^L = ∇_a C ⊙ σ'(z^L), with ∇_a C = a^L - y for the quadratic cost.
    delta_L = (a_L - y) * a_L * (1 - a_L)  # float[N, 2]
    # BP3, BP4 for the dense layer: ∂C/∂W^L = δ^L vec(m)ᵀ, ∂C/∂b^L = δ^L.
    g_W_L = delta_L[:, :, None] * m[:, None, :]
    g_b_L = delta_L
    # BP2 through the dense layer: ∂C/∂m = (W^L)ᵀ δ^L.  No σ' here: m feeds z^L directly.
    g_m = np.einsum("nok,no->nk", W_L, delta_L)  # float[N, 4]
    if variant == "homework":
        z_pool = np.einsum("nku,nu->nk", R, z_c.reshape(n, 9))
        s = sigmoid_np(z_pool)
        g_m = g_m * s * (1 - s)
    # Through the max-pool: each window's δ goes to its argmax unit, and a unit that is the
    # argmax of several (overlapping) windows receives the *sum*: ∂C/∂a^c = Rᵀ ∂C/∂m.
    if variant == "overwrite":
        g_a = np.zeros((n, 9))
        for k in range(4):
            u = np.argmax(R[:, k, :], axis=1)
            g_a[np.arange(n), u] = g_m[:, k]
    else:
        g_a = np.einsum("nku,nk->nu", R, g_m)
    # δ^conv = ∂C/∂z^c = (Rᵀ ∂C/∂m) ⊙ σ'(z^c)   (zero at units that are no window's max).
    delta_c = (g_a * (a_c * (1 - a_c)).reshape(n, 9)).reshape(n, 3, 3)
    # The filter's gradient is the valid cross-correlation of the input with δ^conv:
    #   ∂C/∂W_pq = Σ_ij x_(i+p)(j+q) δ^conv_ij      (9 terms per filter weight)
    g_W = np.stack(
        [
            np.stack(
                [np.sum(x[:, p : p + 3, q : q + 3] * delta_c, axis=(1, 2)) for q in range(2)], 1
            )
            for p in range(2)
        ],
        1,
    )
    g_b_c = delta_c.sum(axis=(1, 2))  # ∂C/∂b_c = Σ_ij δ^conv_ij
    # And δ for the input (what an earlier layer would receive): the "full" convolution of
    # δ^conv with the filter, ∂C/∂x_kl = Σ_pq W_pq δ^conv_(k-p)(l-q).
    g_x = np.zeros_like(x)
    for p in range(2):
        for q in range(2):
            g_x[:, p : p + 3, q : q + 3] += W[:, p, q, None, None] * delta_c
    return {"W": g_W, "b_c": g_b_c, "W_L": g_W_L, "b_L": g_b_L, "x": g_x}


def random_conv_problems(
    n: int, seed: int = 0
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """n random (params, x, y) for the network above, float64."""
    rng = np.random.default_rng(seed)
    params = {
        "W": rng.normal(size=(n, 2, 2)),
        "b_c": rng.normal(size=n),
        "W_L": rng.normal(size=(n, 2, 4)),
        "b_L": rng.normal(size=(n, 2)),
    }
    return params, rng.uniform(size=(n, 4, 4)), rng.uniform(size=(n, 2))


def conv_net_autodiff(
    params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> dict[str, np.ndarray]:
    """jax.grad of `conv_net_cost` (float64), batched: same returns as `conv_net_backprop`."""
    with float64():
        grad = jax.jit(jax.vmap(jax.grad(conv_net_cost, argnums=(0, 1))))
        g_params, g_x = grad(
            {k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(x), jnp.asarray(y)
        )
        out = {k: np.asarray(v) for k, v in g_params.items()}
        out["x"] = np.asarray(g_x)
        return out


def relative_error(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> np.ndarray:
    """Per example: max over all gradient entries of |a - b| / (|b| + 1e-12 max|b|)."""
    n = next(iter(a.values())).shape[0]
    flat_a = np.concatenate([a[k].reshape(n, -1) for k in sorted(a)], axis=1)
    flat_b = np.concatenate([b[k].reshape(n, -1) for k in sorted(a)], axis=1)
    return np.max(np.abs(flat_a - flat_b), axis=1) / np.max(np.abs(flat_b), axis=1)


@dataclasses.dataclass(frozen=True)
class ConvBackpropResult:
    """Problem 5.1, measured: hand-derived gradients against jax.grad, and the two wrong
    variants' errors, over N random networks and inputs; plus the homework's 3x3 example."""

    n: int
    max_abs_err: float  # hand-derived vs jax.grad, all gradients, all examples
    max_rel_err: float
    homework_rel_err: np.ndarray  # float[N] the homework's extra-σ' variant vs jax.grad
    shared_argmax: np.ndarray  # bool[N]  some unit is the argmax of >= 2 windows
    overwrite_rel_err: np.ndarray  # float[N] routing by assignment instead of sum
    example_V: np.ndarray  # the homework's 3x3 example
    example_M: np.ndarray  # its max-pool
    example_R: np.ndarray  # its routing matrix float[4, 9]


HOMEWORK_V = np.array([[3.0, 2.0, 5.0], [4.0, 1.0, 7.0], [3.0, 5.0, 0.0]])


def measure_conv_backprop(n: int = 2000, seed: int = 0) -> ConvBackpropResult:
    params, x, y = random_conv_problems(n, seed)
    auto = conv_net_autodiff(params, x, y)
    hand = conv_net_backprop(params, x, y)
    abs_err = max(float(np.max(np.abs(hand[k] - auto[k]))) for k in auto)
    R = pool_routing(np.stack([HOMEWORK_V]))[0]
    with np.errstate(all="ignore"):
        routed = pool_routing(
            sigmoid_np(
                np.einsum(
                    "npq,npqij->nij",
                    params["W"],
                    np.stack(
                        [
                            np.stack([x[:, p : p + 3, q : q + 3] for q in range(2)], 1)
                            for p in range(2)
                        ],
                        1,
                    ),
                )
                + params["b_c"][:, None, None]
            )
        )
    return ConvBackpropResult(
        n=n,
        max_abs_err=abs_err,
        max_rel_err=float(np.max(relative_error(hand, auto))),
        homework_rel_err=relative_error(conv_net_backprop(params, x, y, "homework"), auto),
        shared_argmax=routed.sum(axis=1).max(axis=1) >= 2,
        overwrite_rel_err=relative_error(conv_net_backprop(params, x, y, "overwrite"), auto),
        example_V=HOMEWORK_V,
        example_M=(R @ HOMEWORK_V.reshape(9)).reshape(2, 2),
        example_R=R,
    )


def check_conv_backprop(r: ConvBackpropResult) -> list[Check]:
    """Problem 5.1: the hand backprop is right; the homework's extra σ' and routing by
    assignment are wrong; its pooling example routes the 7 from two windows."""
    hw_med = float(np.median(r.homework_rel_err))
    shared = r.shared_argmax
    ow = float(np.median(r.overwrite_rel_err[shared])) if shared.any() else 0.0
    ow_clean = float(np.max(r.overwrite_rel_err[~shared])) if (~shared).any() else 0.0
    expected_M = np.array([[4.0, 7.0], [5.0, 7.0]])
    return [
        Check(
            "5.1",
            "hand backprop = jax.grad",
            "δ^L = (a^L - y) ⊙ σ'(z^L); ∂C/∂m = (W^L)ᵀ δ^L; δ^conv = (Rᵀ ∂C/∂m) ⊙ σ'(z^c) "
            "(R: the max-pool's argmax routing, summed over overlapping windows); "
            "∂C/∂W = x ⋆ δ^conv (valid cross-correlation), ∂C/∂b_c = Σ δ^conv, ∂C/∂x = "
            f"δ^conv full-convolved with W — against jax.grad on {r.n} random networks and "
            "inputs (float64); measured: max abs error over every gradient entry",
            expected=0.0,
            measured=r.max_abs_err,
            tolerance=1e-6,
            passed=r.max_abs_err < 1e-6 and r.max_rel_err < 1e-6,
        ),
        Check(
            "5.1",
            "homework's extra sigma' is wrong",
            "the homework's δ^pool = ((W^L)ᵀ δ^L) ⊙ σ'(z^pool) multiplies by a σ' the network "
            "does not have (max-pool has no activation; the conv layer's one σ' is applied "
            "again in δ^conv); measured: median relative error of the resulting gradients "
            "vs jax.grad",
            expected="> 0.01 (wrong)",
            measured=hw_med,
            tolerance=0.01,
            passed=hw_med > 0.01,
        ),
        Check(
            "5.1",
            "overlapping windows must add",
            f"with stride 1 the pooling windows overlap: in {100 * shared.mean():.1f}% of "
            "random inputs one conv unit is the max of 2+ windows, and routing by assignment "
            "instead of summing gives wrong gradients exactly there; measured: median "
            "relative error on those inputs (and 0 on the others)",
            expected="> 0.01 (wrong)",
            measured=ow,
            tolerance=0.01,
            passed=bool(ow > 0.01 and ow_clean < 1e-9),
        ),
        Check(
            "5.1",
            "homework's pooling example",
            "the homework's example V = [[3,2,5],[4,1,7],[3,5,0]] pools to M = [[4,7],[5,7]], "
            "and its 7 is the max of two windows (so its δ is the sum of two pooled δ's); "
            "measured: M, and how many windows route to the 7",
            expected={"M": expected_M.tolist(), "windows_at_7": 2},
            measured={"M": r.example_M.tolist(), "windows_at_7": int(r.example_R[:, 5].sum())},
            tolerance=0,
            passed=bool(np.array_equal(r.example_M, expected_M) and r.example_R[:, 5].sum() == 2),
        ),
    ]
