#!/usr/bin/env python3
"""How much does one sweep's capacity ratio move between runs when every attempt near the knee
is a coin flip? A model, not a measurement: each attempt at rate r passes with probability
1 / (1 + exp((ln r - ln r50) / s)), and this replays the sweep's search (the grid, then
bisection with 2-of-3 re-tests of failing steps, as `splitbench compare` does) many times, and,
for comparison, a fixed-step staircase after the grid with a logistic fit over all attempts.

The default curves: the monolith r50 = 4,600/s with s = 0.03 (an assumption: its pass/fail edge
looked sharp), the microservices r50 = 2,700/s with s = 0.085, which gives about 75% passes at
2,500/s and few at 3,000/s, as results/20261127-knee-repeatability and the earlier runs showed.
Prints, per search design, the spread (standard deviation of ln ratio) and the share of
three-run groups whose ratios lie within 10% of each other. Needs numpy.

Usage: scripts/sweep-noise-model.py [trials]
"""
import math
import random
import sys

import numpy as np

GRID = [1000, 2000, 3000, 4000, 5000, 6000, 8000]
MONOLITH = (4600, 0.03)
MICROSERVICES = (2700, 0.085)


def p_pass(rate, r50, s):
    return 1 / (1 + math.exp((math.log(rate) - math.log(r50)) / s))


def bisection(r50, s, rng, resolution=0.025, attempts=3):
    """The current search: grid to the first failure, bisection to `resolution`; a failing first
    attempt is re-tested and the step fails on 2 of 3. Returns (capacity's low end, attempts)."""
    steps, used = [], 0

    def decide(rate):
        nonlocal used
        verdicts = []
        while True:
            verdicts.append(rng.random() < p_pass(rate, r50, s))
            used += 1
            if verdicts[0]:
                return True
            if verdicts.count(False) >= 2:
                return False
            if verdicts.count(True) >= 2 or len(verdicts) >= attempts:
                return True

    for rate in GRID:
        passed = decide(rate)
        steps.append((rate, passed))
        if not passed:
            break
    while True:
        ordered = sorted(steps)
        passing = 0
        for _, passed in ordered:
            if not passed:
                break
            passing += 1
        low = ordered[passing - 1][0] if passing else 0
        high = ordered[passing][0] if passing < len(ordered) else None
        if high is None or low <= 0 or high - low <= resolution * low:
            return low, used
        mid = round((low + high) / 2)
        steps.append((mid, decide(mid)))


def logistic_fit(observations, s_min=0.01, s_max=0.3):
    """Maximum-likelihood r50 over a grid of (ln r50, s)."""
    x = np.array([math.log(r) for r, _ in observations])
    y = np.array([1.0 if passed else 0.0 for _, passed in observations])
    mus = np.linspace(x.min() - 0.3, x.max() + 0.3, 600)
    ss = np.exp(np.linspace(math.log(s_min), math.log(s_max), 40))
    m, sc = np.meshgrid(mus, ss, indexing="ij")
    z = (m[:, :, None] - x[None, None, :]) / sc[:, :, None]
    ll = (y * -np.logaddexp(0, -z) + (1 - y) * -np.logaddexp(0, z)).sum(axis=2)
    return math.exp(mus[ll.max(axis=1).argmax()])


def staircase(r50, s, rng, trials, step_floor=0.05):
    """Grid (from 2,000) to the first failure, then `trials` single attempts: up after a pass,
    down after a failure, the step halving at each reversal down to `step_floor`."""
    observations, last_pass, first_fail = [], None, None
    for rate in GRID[1:]:
        passed = rng.random() < p_pass(rate, r50, s)
        observations.append((rate, passed))
        if not passed:
            first_fail = rate
            break
        last_pass = rate
    lo = math.log(last_pass or GRID[1] / 2)
    hi = math.log(first_fail or GRID[-1] * 2)
    x, step, previous = (lo + hi) / 2, (hi - lo) / 4, None
    for _ in range(trials):
        rate = round(math.exp(x))
        passed = rng.random() < p_pass(rate, r50, s)
        observations.append((rate, passed))
        if previous is not None and passed != previous:
            step = max(step / 2, math.log(1 + step_floor))
        previous = passed
        x += step if passed else -step
    return logistic_fit(observations), len(observations)


def summarise(name, search, trials):
    ratios, used = [], []
    for _ in range(trials):
        (mono, a), (micro, b) = search(*MONOLITH), search(*MICROSERVICES)
        ratios.append(mono / micro)
        used.append(a + b)
    spread = float(np.log(ratios).std())
    groups = [ratios[i : i + 3] for i in range(0, len(ratios) - 2, 3)]
    within = sum(max(g) / min(g) <= 1.10 for g in groups) / len(groups)
    print(f"{name:<28} sd(ln ratio) {spread:.3f}  attempts per run {np.mean(used):5.1f}  "
          f"three runs within 10%: {within:.0%}")


def main():
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    rng = random.Random(1)
    print(f"true ratio {MONOLITH[0] / MICROSERVICES[0]:.3f}; {trials} simulated runs per design")
    summarise("bisection, 2-of-3 re-tests", lambda r50, s: bisection(r50, s, rng), trials)
    for k in (8, 12, 20, 30):
        summarise(f"staircase, {k} trials + fit", lambda r50, s, k=k: staircase(r50, s, rng, k), trials)


if __name__ == "__main__":
    main()
