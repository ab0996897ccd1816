"""The homework's analytic answers (Problems 1, 2 and 5.1) as functions, checked with jax.grad.

Every result is a pure function in the book's notation (eta = learning rate, lam = L2 strength,
mu = momentum, n = training-set size, m = mini-batch size), and every claim of the homework
becomes a `Check` (`hw5jax.theory.checks`) that can fail. Where each problem lives:

    1.1  hyperparameter_gradients  gradient descent on λ and η through unrolled training
    1.2  l2_decay                  L2 from the old N(0, 1) initialisation: decay, tail-off
    2.1  unstable_gradients        vanishing and exploding gradients in a sigmoid chain
    2.2  sigmoid_gain              |wσ'(wa+b)| >= 1: |w| >= 4, the interval's width, its maximum
    2.3  momentum                  heavy-ball momentum with μ > 1 and μ < 0 (quadratic and MLP)
    5.1  conv_backprop             backpropagation through conv -> max-pool -> dense

    checks.py      Check, is_heuristic, float64 (the local float64 context)
    sigmoid.py     σ and its derivatives by autodiff
    figures.py     one figure per problem, from the results above
    answer_key.py  theory.md, rendered from answer_key.md.j2

Each module has a `measure_*` (or, for 1.2, `analyse_l2_decay`) that returns a frozen result
and a `check_*` that turns it into `Check`s; the MNIST training of 1.2 and of 2.3 on the MLP is
`hw5jax.pipelines.theory_checks`'s, these modules only analyse what it records.
"""

from hw5jax.theory.checks import Check, float64, is_heuristic

__all__ = ["Check", "float64", "is_heuristic"]
