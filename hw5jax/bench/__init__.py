"""hw5jax against the homework's way of training, written plainly in PyTorch, in one process:
same data, same network, same initial weights, same number of steps.

    networks.py      the two networks (both sides of each), their data and work counts
    timing.py        the harness: interleaved repeats, medians, per-repeat ratios, peaks
    parity.py        both sides compute the same steps from the same weights
    formulations.py  the CNN epoch with each way of writing its convolutions and pooling
    cases.py         the cases, a registry: name -> Case (network, measurement, target)
    suite.py         runs the named cases into the results (`results.json`)
    report.py        the results as a table (`table.md`)

`python -m experiments.benchmark` is the command line.
"""
