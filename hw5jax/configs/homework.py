"""The homework, problem by problem, in its own order: each question in a line or two and the
homework's own answer (its claims and numbers, labelled as the homework's wherever shown),
for the answer key (`python -m experiments.report`). Our answers are never written here:
they are read from the results files.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw5jax.configs import batchnorm, cnn, optim_sweep

# The homework's numbers the report compares with ours.
OPTIMIZERS = optim_sweep.HOMEWORK  # optimizer -> (its setting, its test accuracy)
BEST_OPTIMIZER = "momentum"  # "I'd go with SGD+momentum"
BATCHNORM = batchnorm.HOMEWORK  # {"learning_rate": 2.0, "test_accuracy": 0.971}
BATCHNORM_PLAIN = OPTIMIZERS["sgd"][1]  # the BN answer compares with plain SGD's 97.92%
CNN_TEST_ACCURACY = cnn.HOMEWORK_TEST_ACCURACY  # 99.15%, one run
MLP_TEST_ACCURACY = 0.9813  # "that network just eked over 98% (something like 98.13%)"
CONV1_SHAPE = (64, 57, 57)  # "64 channels ... each of these channels being 57x57"
FINAL_LAYER_DIM = 1000
_CNN = cnn.HOMEWORK  # the homework's CNN recipe


def _and(values) -> str:
    return " and ".join(map(str, values))


@dataclass(frozen=True)
class Problem:
    """One problem (or part) of the homework: its number, a title, the question, the
    homework's answer, and the entries of `results/` that answer it. `against`: the theory
    checks that, when they pass, show the homework's answer wrong (`against_kind`: in part,
    or altogether)."""

    id: str
    title: str
    question: str
    homework: str
    entries: tuple[str, ...]
    against: tuple[str, ...] = ()
    against_kind: str = "partly"


PROBLEMS: tuple[Problem, ...] = (
    Problem(
        "1.1",
        "Gradient descent on λ and η",
        "Can gradient descent learn the hyperparameters λ and η? What is the obstacle?",
        "Gradient descent drives λ to 0, since the penalty only adds to the cost, which "
        "defeats regularisation; learning η by gradient descent needs another η, and so on "
        "(“η's within η's”): use a grid search.",
        ("theory_checks",),
        against=(
            "validation hypergradient changes sign",
            "descending the validation cost finds lam > 0",
            "hypergradient descent on eta is insensitive to eta0",
        ),
    ),
    Problem(
        "1.2(a)",
        "L2 from N(0,1) weights: the first epochs",
        "With the old N(0,1) initialisation and λ not too small, are the first epochs "
        "dominated by weight decay?",
        "Yes: the gradient term is negligible because η is small, so each update only scales "
        "w by 1 − ηλ/n < 1.",
        ("theory_checks",),
    ),
    Problem(
        "1.2(b)",
        "L2 from N(0,1) weights: the decay per epoch",
        "Provided ηλ ≪ n, do the weights decay by a factor exp(−ηλ/m) per epoch?",
        "Yes: 1 − ηλ/n ≈ exp(−ηλ/n) (Taylor), applied n/m times per epoch.",
        ("theory_checks",),
    ),
    Problem(
        "1.2(c)",
        "L2 from N(0,1) weights: where the decay tails off",
        "Supposing λ not too large, does the decay tail off when the weights are about "
        "1/√n, n the number of weights in the network?",
        "Yes: with C₀ = 0 and all weights equal, C = λnw²/2m gives w ∝ 1/√n, where "
        "regularisation stops mattering.",
        ("theory_checks",),
    ),
    Problem(
        "2.1",
        "A larger activation derivative and unstable gradients",
        "|σ′| ≤ 1/4 makes gradients vanish. Would an activation with a much larger derivative "
        "avoid the unstable gradient problem?",
        "No: the vanishing gradient turns into an exploding one, a product of factors > 1.",
        ("theory_checks",),
    ),
    Problem(
        "2.2(a)",
        "|wσ′(wa+b)| ≥ 1 needs |w| ≥ 4",
        "Argue that |wσ′(wa+b)| ≥ 1 can only occur if |w| ≥ 4.",
        "Since σ′ < 1/4, |w|·σ′ ≥ 1 needs |w| ≥ 4.",
        ("theory_checks",),
    ),
    Problem(
        "2.2(b)",
        "The width of the interval of a",
        "For |w| ≥ 4, show that the a with |wσ′(wa+b)| ≥ 1 span an interval no wider than "
        "(2/|w|) ln(|w|(1 + √(1 − 4/|w|))/2 − 1).",
        "Solve the quadratic in y = e^(−z); the ± gives half the width, so take “+” and double it.",
        ("theory_checks",),
    ),
    Problem(
        "2.2(c)",
        "Where the width is greatest",
        "Show numerically that the width is greatest at |w| ≈ 6.9, where it is ≈ 0.45.",
        "A plot of the formula: the maximum is at |w| ≈ 6.9, width ≈ 0.45.",
        ("theory_checks",),
    ),
    Problem(
        "2.3",
        "Momentum with μ > 1 and μ < 0",
        "In momentum gradient descent, what goes wrong with μ > 1, and with μ < 0?",
        "μ > 1: the velocity keeps growing, overshoots minima and does not converge. μ < 0: "
        "it speeds up where the gradient is small and slows where it is large, and struggles "
        "to converge.",
        ("theory_checks",),
        against=("convergence region", "MLP: mu = -0.5 converges, more slowly than mu = 0"),
    ),
    Problem(
        "3.1",
        "SGD, momentum, AdaGrad and Adam",
        "Tune SGD, momentum, AdaGrad and Adam on the 784-100-100-10 MLP on validation; report "
        "the parameters, the test accuracies, the training-cost and validation curves. Which "
        "works best?",
        "; ".join(
            f"{name}: {setting}, test {100 * acc:.2f}%"
            for name, (setting, acc) in OPTIMIZERS.items()
        )
        + ". SGD with momentum works best.",
        ("optim_sweep",),
    ),
    Problem(
        "3.2",
        "Batch normalization",
        "Add batch normalization to the hidden layers, retune the learning rate: the new "
        "rate, the test accuracy; does it help?",
        f"SGD with BatchNorm: η = {BATCHNORM['learning_rate']:g}, test "
        f"{100 * BATCHNORM['test_accuracy']:.1f}% against {100 * BATCHNORM_PLAIN:.2f}% "
        "without: it does not help.",
        ("batchnorm",),
    ),
    Problem(
        "4.1",
        "AlexNet: the weights",
        "Get AlexNet's weights and model.",
        "Downloaded torchvision's pretrained AlexNet.",
        ("alexnet_readout",),
    ),
    Problem(
        "4.2",
        "AlexNet: reading out conv1",
        "Extract the output of the first convolutional layer for the test images; what "
        "shapes? Plot one of its arrays.",
        f"{CONV1_SHAPE[0]} channels of {CONV1_SHAPE[1]} × {CONV1_SHAPE[2]} (the prompt says "
        "96); channels 56 and 58 plotted.",
        ("alexnet_readout",),
    ),
    Problem(
        "4.3",
        "AlexNet: the final layer",
        "Extract the output of the final layer. What is its dimension?",
        f"A vector of {FINAL_LAYER_DIM}, one per ImageNet class.",
        ("alexnet_readout",),
    ),
    Problem(
        "4.4",
        "AlexNet: the top-5 of another image",
        "Feed in another image and read out the top-5 probabilities. Is the classification right?",
        "A tiger: “tiger, Panthera tigris” 99.53%, then tiger cat 0.08%: right.",
        ("alexnet_readout",),
    ),
    Problem(
        "5.1",
        "Backpropagation through conv → max-pool → dense",
        "How are the four equations of backpropagation modified for a convolutional layer, a "
        "max-pooling layer and a fully-connected output layer?",
        "δᴸ is unchanged; the error passes back through the max-pool to the position of each "
        "window's maximum only; the filter's gradient is the input convolved with δ^conv.",
        ("theory_checks",),
        against=(
            "homework's extra sigma' is wrong",
            "overlapping windows must add",
            "homework's pooling example",
        ),
        against_kind="disagrees",
    ),
    Problem(
        "5.2",
        "A CNN for MNIST",
        "Design and train a CNN with at least two conv + max-pool layers; the test result, "
        "the design choices; does it beat the other models?",
        f"Test {100 * CNN_TEST_ACCURACY:.2f}% (one run: PyTorch, Adam, "
        f"η = {_CNN['learning_rate']:g}, batch {_CNN['batch_size']}, {_CNN['epochs']} epochs, "
        f"{_and(_CNN['channels'])} filters, hidden layers of {_and(_CNN['hidden'])}), better "
        f"than the MLP's {100 * MLP_TEST_ACCURACY:.2f}%.",
        ("cnn_homework", "cnn_torch", "cnn_best", "cnn_ensemble", "optim_sweep"),
    ),
)
