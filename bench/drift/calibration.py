#!/usr/bin/env python3
"""False-alarm rate and power of the default drift rule next to a fixed PSI > 0.1 cut.

    .venv/bin/python bench/drift/calibration.py [--windows 20000]

Runs the same Monte Carlo as ``tests/unit/drift/test_drift_calibration.py`` (see
``tests/unit/drift/drift_simulation.py``) with more windows, and prints a markdown table. Runs in the
product virtualenv; takes well under a minute.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_simulation():
    path = REPO / "tests/unit/drift/drift_simulation.py"
    spec = importlib.util.spec_from_file_location("drift_simulation", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--windows", type=int, default=20_000, help="windows per cell (no drift)")
    parser.add_argument("--power-windows", type=int, default=5_000, help="windows per cell (0.2 SD shift)")
    args = parser.parse_args()
    sim = load_simulation()
    print(
        f"Reference 100,000 rows; {sim.N_NUMERIC} numeric N(0,1) + {sim.N_CATEGORICAL} categorical "
        f"({sim.N_CATEGORIES} Zipf categories) features; alpha 1%, Bonferroni.\n"
    )
    print(
        "| live window (rows) | default rule: false alarms per window | PSI > 0.1: false alarms per window "
        "| PSI > 0.1: per numeric feature | default rule: power, 0.2 SD shift on one feature "
        "| PSI > 0.1: power (window) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for window in (100, 1_000, 10_000, 100_000):
        null = sim.simulate(window, windows=args.windows, seed=window)
        shifted = sim.simulate(window, windows=args.power_windows, shift_sd=0.2, seed=window + 1)
        print(
            f"| {window:,} | {null.default_alarm:.2%} | {null.psi_alarm:.2%} | {null.psi_feature_alarm:.2%} "
            f"| {shifted.default_alarm:.1%} | {shifted.psi_alarm:.1%} |",
            flush=True,
        )
    print(f"\n{args.windows:,} no-drift windows and {args.power_windows:,} shifted windows per row.\n")
    print("The same sample-size-aware rule with the other methods on counts (alarms per window):\n")
    print(
        "| live window (rows) | PSI (p-value rule) | JensenShannon (p-value rule) | KS on the bins | KS: power, 0.2 SD shift |"
    )
    print("|---:|---:|---:|---:|---:|")
    for window in (100, 1_000, 10_000, 100_000):
        rates = [
            sim.simulate(window, windows=args.windows, seed=window, method=m).default_alarm
            for m in (sim.DriftMethod.PSI, sim.DriftMethod.JENSEN_SHANNON, sim.DriftMethod.KS)
        ]
        power = sim.simulate(
            window, windows=args.power_windows, shift_sd=0.2, seed=window + 1, method=sim.DriftMethod.KS
        ).default_alarm
        print(f"| {window:,} | {rates[0]:.2%} | {rates[1]:.2%} | {rates[2]:.2%} | {power:.1%} |", flush=True)


if __name__ == "__main__":
    main()
