#!/usr/bin/env python3
"""Drift statistics benchmark: kubeloop.drift against Evidently, Alibi Detect and a plain scipy loop.

    python bench/drift/run.py                     # 1e5 and 1e6 rows x 100 features (20 categorical)
    python bench/drift/run.py --rows 100000       # one size only

The peers pull heavy dependencies (and alibi-detect needs numpy < 2), so everything runs in a separate
virtualenv, created on first use from ``bench/drift/requirements.txt`` (pinned) at ``$KUBELOOP_BENCH_VENV``
(default ``~/.cache/kubeloop/drift-bench-venv``). kubeloop.drift is imported from the source tree, so all
contenders share one numpy and one scipy. A peer that cannot be installed is reported with its error and
the others still run.

Workload, per row count N: a reference and a live table of N rows each, 80 numeric features (60 normal,
10 exponential, 10 Poisson-valued with heavy ties) and 20 integer-coded categorical ones (5 to 40
categories). Live data drift on a quarter of the features. Statistics: PSI and chi-squared on 10 reference
quantile bins (numeric) and on categories; KS from the counts on those bins (what a DriftMonitor computes),
and exact KS and Wasserstein-1 on every raw numeric row. Alibi Detect is compared with both of kubeloop's
KS paths; the live rows are counted inside kubeloop's timing, although in production the server counts
them as requests arrive.

Timings are wall-clock, single-threaded BLAS, best of ``--repeat`` runs (default 2 at 1e5 rows, 1 at 1e6).
A full run takes about 15 minutes on 2 cores, ten of them Evidently at 1e6 rows (``--skip evidently``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_VENV = Path(os.environ.get("KUBELOOP_BENCH_VENV", Path.home() / ".cache/kubeloop/drift-bench-venv"))
N_NUMERIC, N_CATEGORICAL, N_BINS = 80, 20, 10


# --------------------------------------------------------------------------- the bench virtualenv


def ensure_venv(venv: Path) -> Path:
    """Create or refresh the bench virtualenv; record peers that fail to install in ``install-errors.json``."""
    python = venv / "bin" / "python"
    requirements = (HERE / "requirements.txt").read_text()
    stamp = venv / ".kubeloop-requirements"
    if python.exists() and stamp.exists() and stamp.read_text() == requirements:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    errors: dict[str, str] = {}
    everything = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-r", str(HERE / "requirements.txt")],
        capture_output=True,
        text=True,
    )
    if everything.returncode != 0:  # install one by one to keep whatever works
        lines = [ln.split("#")[0].strip() for ln in requirements.splitlines()]
        for req in filter(None, lines):
            one = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", req], capture_output=True, text=True
            )
            if one.returncode != 0:
                errors[req] = one.stderr.strip()[-2000:]
    (venv / "install-errors.json").write_text(json.dumps(errors, indent=2))
    stamp.write_text(requirements)
    return python


# --------------------------------------------------------------------------- data


def make_data(rows: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)

    def numeric(shifted: bool):
        out = np.empty((N_NUMERIC, rows))
        for f in range(N_NUMERIC):
            drift = shifted and f % 4 == 0
            if f < 60:
                out[f] = rng.normal(0.1 if drift else 0.0, 1.0, rows)
            elif f < 70:
                out[f] = rng.exponential(1.2 if drift else 1.0, rows)
            else:
                out[f] = rng.poisson(3.3 if drift else 3.0, rows).astype(float)
        return out

    levels = [5 + (f * 35) // (N_CATEGORICAL - 1) for f in range(N_CATEGORICAL)]

    def categorical(shifted: bool):
        out = np.empty((N_CATEGORICAL, rows), dtype=np.int64)
        for f, k in enumerate(levels):
            p = 1.0 / np.arange(1, k + 1)
            if shifted and f % 4 == 0:
                p = p[::-1] ** 0.2
            out[f] = rng.choice(k, size=rows, p=p / p.sum())
        return out

    return numeric(False), numeric(True), categorical(False), categorical(True)


def best_of(repeat: int, fn):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


# --------------------------------------------------------------------------- contenders


def kubeloop_contender(ref_num, cur_num, ref_cat, cur_cat, repeat):
    import numpy as np
    from kubeloop.drift import (
        DriftConfig,
        DriftMethod,
        binned_test,
        build_profile,
        chi2_test,
        count_categorical,
        count_numeric,
        ecdf_distances,
        evaluate,
        ks_pvalue,
        psi,
        stack_counts,
    )

    def build():
        profile = build_profile(
            {f"x{f}": ref_num[f] for f in range(N_NUMERIC)},
            {f"c{f}": ref_cat[f] for f in range(N_CATEGORICAL)},
            n_bins=N_BINS,
            sample_size=0,
        )
        # Exact KS/Wasserstein on all rows needs the whole reference, kept sorted like the profile sample.
        return profile, np.sort(ref_num, axis=1)

    t_profile, (profile, ref_sorted) = best_of(repeat, build)
    refs = list(profile.numeric.values()) + list(profile.categorical.values())
    ref_counts = stack_counts([np.asarray(r.counts) for r in refs])

    def count():
        rows = [count_numeric(r, cur_num[f]) for f, r in enumerate(profile.numeric.values())]
        rows += [count_categorical(r, cur_cat[f]) for f, r in enumerate(profile.categorical.values())]
        return stack_counts(rows)

    num, cat = slice(None, N_NUMERIC), slice(N_NUMERIC, None)

    def binned(live_counts):
        ks = binned_test(ref_counts[num], live_counts[num], DriftMethod.KS)
        return psi(ref_counts, live_counts), chi2_test(ref_counts, live_counts), ks

    def ecdf():
        d = ecdf_distances(ref_sorted, cur_num, reference_sorted=True)
        return d, ks_pvalue(d.ks, d.n_reference, d.n_live)

    def ks_chi2_from_counts():
        # What a DriftMonitor with method KS computes: every live row counted on the profile's bins, KS on
        # the numeric features' bins, chi-squared on the categories.
        live = count()
        return binned_test(ref_counts[num], live[num], DriftMethod.KS), chi2_test(ref_counts[cat], live[cat])

    t_count, live_counts = best_of(repeat, count)
    t_binned, (psi_values, chi, (ks_binned, ks_binned_p)) = best_of(repeat, lambda: binned(live_counts))
    t_ecdf, (dist, ks_p) = best_of(repeat, ecdf)
    t_ks_chi2_counts, _ = best_of(repeat, ks_chi2_from_counts)
    t_cat_only, _ = best_of(
        repeat,
        lambda: chi2_test(
            ref_counts[cat],
            stack_counts(
                [count_categorical(r, cur_cat[f]) for f, r in enumerate(profile.categorical.values())]
            ),
        ),
    )
    # What the operator does per check: counts over the profile bins (built by the server as rows arrive)
    # and, for Wasserstein, a bounded live reservoir against the profile's bounded sample. The counting is
    # the server's, spread over requests, so it is not in these figures: shown apart, never in a ratio.
    small = build_profile(
        {f"x{f}": ref_num[f] for f in range(N_NUMERIC)},
        {f"c{f}": ref_cat[f] for f in range(N_CATEGORICAL)},
        n_bins=N_BINS,
        sample_size=1000,
    )
    widths = [len(r.counts) for r in refs]
    numeric_counts = {f"x{f}": live_counts[f, : widths[f]] for f in range(N_NUMERIC)}
    categorical_counts = {
        f"c{f}": live_counts[N_NUMERIC + f, : widths[N_NUMERIC + f]] for f in range(N_CATEGORICAL)
    }
    reservoir = {f"x{f}": cur_num[f, :5000] for f in range(N_NUMERIC)}
    operator = {}
    for method in (DriftMethod.AUTO, DriftMethod.PSI, DriftMethod.KS, DriftMethod.WASSERSTEIN):
        config = DriftConfig(method=method)
        operator[method.value], _ = best_of(
            repeat, lambda c=config: evaluate(small, numeric_counts, categorical_counts, reservoir, c)
        )
    return {
        "operator_evaluate": operator,
        "profile": t_profile,
        "count": t_count,
        "binned": t_binned,
        "ecdf": t_ecdf,
        "check": t_count + t_binned + t_ecdf,
        "cold": t_profile + t_count + t_binned + t_ecdf,
        "ks_chi2_counts": t_ks_chi2_counts,
        "ks_chi2_exact": t_ecdf + t_cat_only,
        "values": {
            "ks": dist.ks,
            "ks_p": ks_p,
            "ks_binned": ks_binned,
            "ks_binned_p": ks_binned_p,
            "w1": dist.wasserstein,
            "psi": psi_values,
            "chi2": chi.statistic,
        },
    }


def ks_yardstick(ref_num, cur_num, repeat):
    """KS + W1 next to plain sorts of the same rows, interleaved so that load from other jobs hits both."""
    import numpy as np
    from kubeloop.drift import build_profile, count_numeric, ecdf_distances, ks_distance, stack_counts

    ref_sorted = np.sort(ref_num, axis=1)
    profile = build_profile({f"x{f}": ref_num[f] for f in range(N_NUMERIC)}, {}, n_bins=N_BINS, sample_size=0)
    bins = list(profile.numeric.values())
    ref_counts = stack_counts([np.asarray(r.counts) for r in bins])

    def ks_from_counts():
        live = stack_counts([count_numeric(r, cur_num[f]) for f, r in enumerate(bins)])
        return ks_distance(ref_counts, live)

    runs = {"sort_live": [], "ks_counts": [], "ecdf": [], "sort_both": [], "ecdf_cold": []}
    steps = {
        "sort_live": lambda: np.sort(cur_num, axis=1),
        "ks_counts": ks_from_counts,
        "ecdf": lambda: ecdf_distances(ref_sorted, cur_num, reference_sorted=True),
        "sort_both": lambda: (np.sort(ref_num, axis=1), np.sort(cur_num, axis=1)),
        "ecdf_cold": lambda: ecdf_distances(ref_num, cur_num),
    }
    for _ in range(repeat):
        for name, step in steps.items():
            runs[name].append(best_of(1, step)[0])
    return {name: min(times) for name, times in runs.items()}


def scipy_contender(ref_num, cur_num, ref_cat, cur_cat, repeat):
    import numpy as np
    from scipy import stats

    def psi_of(a, b):
        a = (a + 0.5) / (a + 0.5).sum()
        b = (b + 0.5) / (b + 0.5).sum()
        return float(np.sum((b - a) * np.log(b / a)))

    def loop():
        out = []
        for f in range(N_NUMERIC):
            x, y = ref_num[f], cur_num[f]
            edges = np.unique(np.quantile(x, np.arange(1, N_BINS) / N_BINS, method="inverted_cdf"))
            a = np.bincount(np.searchsorted(edges, x), minlength=len(edges) + 1)
            b = np.bincount(np.searchsorted(edges, y), minlength=len(edges) + 1)
            keep = (a + b) > 0
            out.append(
                (
                    psi_of(a, b),
                    stats.chi2_contingency([a[keep], b[keep]], correction=False).statistic,
                    stats.ks_2samp(x, y, method="asymp").statistic,
                    stats.wasserstein_distance(x, y),
                )
            )
        for f in range(N_CATEGORICAL):
            keys = np.union1d(ref_cat[f], cur_cat[f])
            a = np.array([np.count_nonzero(ref_cat[f] == k) for k in keys])
            b = np.array([np.count_nonzero(cur_cat[f] == k) for k in keys])
            out.append((psi_of(a, b), stats.chi2_contingency([a, b], correction=False).statistic))
        return out

    t, values = best_of(repeat, loop)
    return {"total": t, "values": values}


def evidently_contender(ref_num, cur_num, ref_cat, cur_cat, repeat):
    import warnings

    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    warnings.filterwarnings("ignore")
    num = [f"x{f}" for f in range(N_NUMERIC)]
    cat = [f"c{f}" for f in range(N_CATEGORICAL)]

    def frame(numeric, categorical):
        return pd.DataFrame(
            {**dict(zip(num, numeric, strict=True)), **dict(zip(cat, categorical, strict=True))}
        )

    definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
    reference = Dataset.from_pandas(frame(ref_num, ref_cat), data_definition=definition)
    current = Dataset.from_pandas(frame(cur_num, cur_cat), data_definition=definition)
    # Force the same tests on every column (Evidently would otherwise switch tests above 1,000 rows).
    # Its chi-square is for categorical columns only.
    metrics = [ValueDrift(column=c, method=m) for c in num for m in ("psi", "ks", "wasserstein")]
    metrics += [ValueDrift(column=c, method=m) for c in cat for m in ("psi", "chisquare")]

    def run():
        return Report(metrics).run(current_data=current, reference_data=reference)

    t, snapshot = best_of(repeat, run)
    return {"total": t, "metrics": len(metrics), "results": len(snapshot.dict()["metrics"])}


def alibi_contender(ref_num, cur_num, ref_cat, cur_cat, repeat):
    from alibi_detect.cd import ChiSquareDrift, KSDrift

    # Alibi wants (rows, features); the transposed views make each feature a contiguous column.
    start = time.perf_counter()
    ks = KSDrift(ref_num.T, p_val=0.05)
    chi = ChiSquareDrift(ref_cat.T, p_val=0.05)
    t_init = time.perf_counter() - start
    t_ks, ks_out = best_of(repeat, lambda: ks.predict(cur_num.T, return_p_val=True, return_distance=True))
    t_chi, chi_out = best_of(repeat, lambda: chi.predict(cur_cat.T, return_p_val=True, return_distance=True))
    return {
        "init": t_init,
        "ks": t_ks,
        "chi2": t_chi,
        "total": t_ks + t_chi,
        "values": {"ks": ks_out["data"]["distance"], "chi2": chi_out["data"]["distance"]},
    }


# --------------------------------------------------------------------------- driver


def guarded(name, fn, errors):
    try:
        return fn()
    except Exception as exc:  # a peer that fails is reported, the rest still runs
        errors[name] = f"{type(exc).__name__}: {exc}"
        return None


def bench(rows: int, repeat: int, install_errors: dict[str, str], skip: set[str]) -> dict:
    import numpy as np

    errors: dict[str, str] = {}
    ref_num, cur_num, ref_cat, cur_cat = make_data(rows, seed=rows)
    data = (ref_num, cur_num, ref_cat, cur_cat)
    load: dict[str, tuple[float, float]] = {}

    def timed(name, fn):
        before = os.getloadavg()[0]
        out = fn()
        load[name] = (round(before, 1), round(os.getloadavg()[0], 1))
        return out

    # kubeloop is cheap, so it always gets at least 3 runs; the peers get `repeat`.
    own = max(repeat, 3)
    ours = timed("kubeloop", lambda: kubeloop_contender(*data, own))
    sticks = timed("ks yardstick", lambda: ks_yardstick(ref_num, cur_num, own))
    scipy_loop = timed("scipy loop", lambda: scipy_contender(*data, repeat))
    evid, alibi = None, None
    if "evidently" not in skip and not any(req.startswith("evidently") for req in install_errors):
        evid = timed(
            "evidently", lambda: guarded("evidently", lambda: evidently_contender(*data, repeat), errors)
        )
    if "alibi" not in skip and not any(req.startswith("alibi-detect") for req in install_errors):
        alibi = timed(
            "alibi", lambda: guarded("alibi-detect", lambda: alibi_contender(*data, repeat), errors)
        )

    # Same numbers, not just the same work: compare the statistics the contenders share.
    checks = {}
    sc = scipy_loop["values"]
    checks["ks_vs_scipy"] = float(np.max(np.abs(ours["values"]["ks"] - [v[2] for v in sc[:N_NUMERIC]])))
    checks["w1_vs_scipy"] = float(np.max(np.abs(ours["values"]["w1"] - [v[3] for v in sc[:N_NUMERIC]])))
    checks["psi_vs_scipy"] = float(np.max(np.abs(ours["values"]["psi"] - [v[0] for v in sc])))
    rel = np.abs(ours["values"]["chi2"] - [v[1] for v in sc]) / np.array([v[1] for v in sc])
    checks["chi2_vs_scipy_rel"] = float(np.max(rel))
    # KS on the profile's ten bins against exact KS on every row: the statistic can only be smaller, and
    # the verdicts (alpha 1%, Bonferroni over the numeric features) should be the same.
    checks["ks_binned_minus_exact_max"] = float(np.max(ours["values"]["ks"] - ours["values"]["ks_binned"]))
    drifted_exact = ours["values"]["ks_p"] * N_NUMERIC <= 0.01
    drifted_binned = ours["values"]["ks_binned_p"] * N_NUMERIC <= 0.01
    checks["ks_verdicts_differ"] = int(np.count_nonzero(drifted_exact != drifted_binned))
    checks["ks_drifted_features"] = int(np.count_nonzero(drifted_binned))
    if alibi:
        checks["ks_vs_alibi_float32"] = float(np.max(np.abs(ours["values"]["ks"] - alibi["values"]["ks"])))
    for contender in (ours, scipy_loop, evid, alibi):
        if contender:
            contender.pop("values", None)
    return {
        "rows": rows,
        "repeat": repeat,
        "kubeloop": ours,
        "yardsticks": sticks,
        "scipy_loop": scipy_loop,
        "evidently": evid,
        "alibi": alibi,
        "checks": checks,
        "load": load,
        "own_repeat": own,
        "errors": {**errors, **install_errors},
    }


def ratio(a, b):
    return f"{a / b:.1f}x" if a and b else "n/a"


def render(result: dict) -> str:
    k, y, s, e, a = (result[key] for key in ("kubeloop", "yardsticks", "scipy_loop", "evidently", "alibi"))
    rows = result["rows"]
    lines = [
        f"### {rows:,} rows x {N_NUMERIC + N_CATEGORICAL} features ({N_CATEGORICAL} categorical): "
        f"kubeloop and sorts best of {result['own_repeat']} (interleaved), peers best of {result['repeat']}",
        "",
        "| contender | what it computes | seconds | kubeloop check is faster by | kubeloop cold is faster by |",
        "|---|---|---:|---:|---:|",
        f"| kubeloop check (profile prebuilt) | PSI + chi2 (100 features) + KS from counts, exact KS "
        f"+ W1 (80) | {k['check']:.3f} | | |",
        f"| kubeloop cold (profile built in the timing) | same | {k['cold']:.3f} | | |",
    ]
    if e:
        lines.append(
            f"| Evidently (tests forced) | PSI (100) + KS + W1 (80) + chi2 (20 categorical) | {e['total']:.3f} "
            f"| {ratio(e['total'], k['check'])} | {ratio(e['total'], k['cold'])} |"
        )
    if a:
        lines.append(
            f"| Alibi Detect KSDrift + ChiSquareDrift | KS (80) + chi2 (20 categorical) | {a['total']:.3f} "
            f"| {ratio(a['total'], k['ks_chi2_counts'])} (vs kubeloop KS from counts + chi2, live rows "
            f"counted in the timing, {k['ks_chi2_counts']:.3f} s); {ratio(a['total'], k['ks_chi2_exact'])} "
            f"(vs kubeloop exact KS on every row + chi2, {k['ks_chi2_exact']:.3f} s) "
            f"| {ratio(a['total'], k['cold'])} (vs the whole cold run) |"
        )
    lines.append(
        f"| scipy per-feature loop | PSI + chi2 (100) + KS + W1 (80) | {s['total']:.3f} "
        f"| {ratio(s['total'], k['check'])} | {ratio(s['total'], k['cold'])} |"
    )
    lines += [
        "",
        "| KS yardstick | seconds | ratio |",
        "|---|---:|---:|",
        f"| np.sort of the live rows (80 x {rows:,}) | {y['sort_live']:.3f} | |",
        f"| kubeloop KS from counts (counts the live rows on the profile's bins, then KS) "
        f"| {y['ks_counts']:.3f} | {y['ks_counts'] / y['sort_live']:.2f}x the live sort |",
        f"| kubeloop KS + W1, reference presorted (sorts live, merges) | {y['ecdf']:.3f} "
        f"| {y['ecdf'] / y['sort_live']:.2f}x the live sort |",
        f"| np.sort of reference and live rows | {y['sort_both']:.3f} | |",
        f"| kubeloop KS + W1, nothing presorted (sorts both, merges) | {y['ecdf_cold']:.3f} "
        f"| {y['ecdf_cold'] / y['sort_both']:.2f}x the sort of both |",
        "",
        f"kubeloop breakdown: profile {k['profile']:.3f} s, live counts {k['count']:.3f} s, "
        f"PSI + chi2 + KS from counts {k['binned']:.4f} s, exact KS + W1 on every row {k['ecdf']:.3f} s.",
    ]
    lines.append(
        "Operator per check, `evaluate()` on counts + a 5,000-row live reservoir vs the profile's 1,000-row "
        "sample (p-values, corrections and verdicts included): "
        + ", ".join(f"{m} {t * 1000:.1f} ms" for m, t in k["operator_evaluate"].items())
        + "."
    )
    if a:
        lines.append(
            f"Alibi Detect: KSDrift {a['ks']:.3f} s, ChiSquareDrift {a['chi2']:.3f} s (constructors {a['init']:.3f} s, untimed)."
        )
    lines.append("Agreement: " + ", ".join(f"{name} {value:.1e}" for name, value in result["checks"].items()))
    lines.append(
        "Load average (1 min) before/after each, on this shared machine: "
        + ", ".join(f"{name} {a}/{b}" for name, (a, b) in result["load"].items())
    )
    for name, error in result["errors"].items():
        lines.append(f"**{name} unavailable**: `{error}`")
    return "\n".join(lines)


def inner(args) -> None:
    import numpy as np
    import scipy

    install_errors = json.loads(Path(args.install_errors).read_text()) if args.install_errors else {}
    versions = {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__}
    for package in ("evidently", "alibi_detect", "pandas"):
        try:
            versions[package] = __import__(package).__version__
        except Exception as exc:
            versions[package] = f"unavailable ({type(exc).__name__})"
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
    results = []
    for rows in args.rows:
        repeat = args.repeat or (2 if rows <= 100_000 else 1)
        start = time.perf_counter()
        result = bench(rows, repeat, install_errors, set(args.skip))
        result["versions"] = versions
        results.append(result)
        print(render(result), flush=True)
        print(f"({rows:,} rows benchmarked in {time.perf_counter() - start:.0f} s)\n", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=0, help="best of N (default 2 at <=1e5 rows, else 1)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["evidently", "alibi"], help="leave out slow peers"
    )
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--install-errors", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args)
        return
    python = ensure_venv(args.venv)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "operator"),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    forwarded = ["--rows", *map(str, args.rows), "--repeat", str(args.repeat)]
    if args.skip:
        forwarded += ["--skip", *args.skip]
    if args.json:
        forwarded += ["--json", str(Path(args.json).resolve())]
    errors = args.venv / "install-errors.json"
    if errors.exists():
        forwarded += ["--install-errors", str(errors)]
    os.execve(str(python), [str(python), str(Path(__file__).resolve()), "--inner", *forwarded], env)


if __name__ == "__main__":
    main()
