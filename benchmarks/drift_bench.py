"""Drift engine benchmark: our binned engine against scipy, Evidently and NannyML in one run.

Workload (issue 3): 50 numeric features, a 100,000-row reference and a 100,000-row current window
in which half of the features are shifted by 0.5 standard deviations.

- ours: ``Profile.bin_counts`` of the window plus ``compute_drift`` with every numeric metric
  (psi, ks, js, wasserstein) and the chi-square statistic on the same bins; the reference profile
  is built once beforehand (as the trainer does), and its build time is printed separately;
- scipy: ``scipy.stats.ks_2samp`` on the raw samples, one call per feature;
- Evidently 0.7 (``DataDriftPreset``) and NannyML 0.13 (``UnivariateDriftCalculator``), which
  only install in their own virtual environment (``.bench/drift-peers``, created on first use:
  Evidently 0.7 needs pandas<3, NannyML imports statsmodels without declaring it). They run in a
  subprocess on the same arrays; when they cannot be installed they are skipped with a note.

Peak memory of our engine is measured with tracemalloc as the peak allocated on top of the
window's array while counting and scoring. Timings are best-of-N wall clock on this machine.

    python benchmarks/drift_bench.py [--rows 100000] [--features 50] [--repeat 5] [--no-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from scipy import stats as scipy_stats

from modelops.drift import DEFAULT_THRESHOLDS, Profile, build_profile, compute_drift
from modelops.drift import statistics as drift_stats

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".bench" / "drift-peers"
PEER_REQUIREMENTS = ["evidently>=0.7,<0.8", "pandas<3", "nannyml>=0.13,<0.14", "statsmodels"]
SHIFT_SD = 0.5

PEER_SCRIPT = r"""
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd

ref_path, cur_path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
reference = np.load(ref_path)
current = np.load(cur_path)
columns = [f"f{i}" for i in range(reference.shape[1])]
ref_df = pd.DataFrame(reference, columns=columns)
cur_df = pd.DataFrame(current, columns=columns)
out = {}

def best(fn, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value

try:
    import evidently
    from evidently import Report
    from evidently.presets import DataDriftPreset

    def evidently_run(r=ref_df, c=cur_df):
        snapshot = Report([DataDriftPreset()]).run(current_data=c, reference_data=r)
        return snapshot.dict()

    evidently_run(ref_df.iloc[:2000], cur_df.iloc[:2000])  # warm-up: imports, registries
    seconds, doc = best(evidently_run, repeat)
    drifted = doc["metrics"][0]["value"]["count"]
    out["evidently"] = {"version": evidently.__version__, "seconds": seconds,
                        "drifted_columns": drifted,
                        "method": doc["metrics"][1]["config"].get("method")}
except Exception as error:  # a peer that breaks is reported, not fatal
    out["evidently"] = {"error": f"{type(error).__name__}: {error}"}

try:
    import nannyml as nml

    methods = ["kolmogorov_smirnov", "jensen_shannon", "wasserstein"]

    def nannyml_fit():
        calc = nml.UnivariateDriftCalculator(
            column_names=columns, continuous_methods=methods, chunk_number=1)
        return calc.fit(ref_df)

    nannyml_fit()  # warm-up
    fit_seconds, calc = best(nannyml_fit, repeat)
    calc_seconds, result = best(lambda: calc.calculate(cur_df), repeat)
    frame = result.filter(period="analysis").to_df()
    alerts = sum(any(bool(frame[(c, m, "alert")].iloc[-1]) for m in methods) for c in columns)
    out["nannyml"] = {"version": nml.__version__, "fit_seconds": fit_seconds,
                      "calculate_seconds": calc_seconds, "alerts": alerts,
                      "methods": methods}
except Exception as error:
    out["nannyml"] = {"error": f"{type(error).__name__}: {error}"}

out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def make_data(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Reference and current windows of varied shapes; every other feature shifted in current."""
    rng = np.random.default_rng(seed)

    def sample(n: int) -> np.ndarray:
        columns = []
        for j in range(features):
            kind = j % 5
            if kind == 0:
                columns.append(rng.normal(j, 1 + j % 3, size=n))
            elif kind == 1:
                columns.append(rng.lognormal(0, 0.5, size=n))
            elif kind == 2:
                columns.append(rng.exponential(2, size=n))
            elif kind == 3:
                columns.append(rng.uniform(-1, 1, size=n))
            else:
                columns.append(rng.gamma(3, size=n))
        return np.ascontiguousarray(np.column_stack(columns))

    reference = sample(rows)
    current = sample(rows)
    shifted = list(range(0, features, 2))
    current[:, shifted] += SHIFT_SD * reference[:, shifted].std(axis=0)
    return reference, current, shifted


def best_of(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times = []
    value = None
    for _ in range(repeat):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return min(times), value


def our_engine(profile: Profile, window: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Bin the window and compute all five statistics (chi-square on the numeric bins)."""
    counts = profile.bin_counts(window)
    report = compute_drift(profile, counts)
    reference = profile.reference_proportions()
    chi2, _ = drift_stats.chi_square(reference, counts.astype(np.float64), reference >= 0)
    return report.breached_features, chi2


def peak_extra_bytes(function: Callable[[], Any]) -> int:
    """Peak bytes allocated (tracemalloc sees numpy buffers) while ``function`` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        function()
        return tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()


def one_row_microseconds(profile: Profile, window: np.ndarray) -> float:
    row = window[:1]
    for _ in range(2000):
        profile.bin_counts(row)
    calls = 20_000
    start = time.perf_counter()
    for _ in range(calls):
        profile.bin_counts(row)
    return (time.perf_counter() - start) / calls * 1e6


def ensure_peer_python(log: Callable[[str], None]) -> Path | None:
    """The peers' interpreter, creating and filling their virtualenv on first use."""
    python = PEER_VENV / "bin" / "python"
    probe = [str(python), "-c", "import evidently, nannyml"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    log(f"installing peers into {PEER_VENV} ({', '.join(PEER_REQUIREMENTS)}) ...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS],
            check=True,
            timeout=1800,
        )
    except (subprocess.SubprocessError, OSError) as error:
        log(f"note: peers skipped, they did not install: {error}")
        return None
    if subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        log("note: peers installed but do not import; skipped")
        return None
    return python


def run_peers(
    python: Path, reference: np.ndarray, current: np.ndarray, repeat: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        ref_path, cur_path = Path(tmp, "reference.npy"), Path(tmp, "current.npy")
        np.save(ref_path, reference)
        np.save(cur_path, current)
        script = Path(tmp, "peers.py")
        script.write_text(PEER_SCRIPT, encoding="utf-8")
        completed = subprocess.run(
            [str(python), str(script), str(ref_path), str(cur_path), str(repeat)],
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="best of N for our engine")
    parser.add_argument("--peer-repeat", type=int, default=2, help="best of N for the peers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-peers", action="store_true", help="skip Evidently and NannyML")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, flush=True)

    log(
        f"drift benchmark: {args.features} numeric features, reference and current "
        f"{args.rows:,} rows each, features 0,2,4,... shifted by {SHIFT_SD} sd"
    )
    log(
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"{os.cpu_count()} CPUs"
    )
    reference, current, shifted = make_data(args.rows, args.features, args.seed)
    names = [f"f{i}" for i in range(args.features)]
    window_mb = current.nbytes / 2**20

    build_seconds, profile = best_of(lambda: build_profile(reference, names), 2)
    ours_seconds, (breached, _) = best_of(lambda: our_engine(profile, current), args.repeat)
    extra = peak_extra_bytes(lambda: our_engine(profile, current))
    row_us = one_row_microseconds(profile, current)
    expected = {names[j] for j in shifted}
    found = set(breached)

    def scipy_loop() -> int:
        return sum(
            scipy_stats.ks_2samp(reference[:, j], current[:, j]).pvalue < 0.05
            for j in range(args.features)
        )

    scipy_seconds, scipy_flagged = best_of(scipy_loop, 2)
    scipy_extra = peak_extra_bytes(scipy_loop)
    targets = [
        ("ours >= 10x faster than the scipy loop", scipy_seconds / ours_seconds >= 10),
        ("ours peak extra memory < 2x the window", extra < 2 * current.nbytes),
    ]

    log("")
    log(f"{'engine':46} {'seconds':>9} {'vs ours':>9}  notes")
    log(
        f"{'ours: bin window + 5 statistics':46} {ours_seconds:9.4f} {1:9.1f}  "
        f"flagged {len(found)}/{args.features} (shifted {len(expected)}, "
        f"missed {len(expected - found)}, false {len(found - expected)})"
    )
    log(
        f"{'ours: build the reference profile (once)':46} {build_seconds:9.4f} "
        f"{build_seconds / ours_seconds:9.1f}  per model version, not per window"
    )
    log(
        f"{'scipy ks_2samp per feature':46} {scipy_seconds:9.4f} "
        f"{scipy_seconds / ours_seconds:9.1f}  p<0.05 on {scipy_flagged}/{args.features}"
    )
    if not args.no_peers:
        python = ensure_peer_python(log)
        peers = run_peers(python, reference, current, args.peer_repeat) if python else {}
        evidently = peers.get("evidently", {"error": peers.get("error", "skipped")})
        if "seconds" in evidently:
            targets.append(
                ("ours >= 50x faster than Evidently", evidently["seconds"] / ours_seconds >= 50)
            )
            log(
                f"{'Evidently ' + evidently['version'] + ' DataDriftPreset':46} "
                f"{evidently['seconds']:9.4f} {evidently['seconds'] / ours_seconds:9.1f}  "
                f"{evidently['method']}; drifted {evidently['drifted_columns']:.0f} columns; "
                f"vs ours incl. profile build "
                f"{evidently['seconds'] / (ours_seconds + build_seconds):.1f}x"
            )
        else:
            log(f"note: Evidently skipped: {evidently.get('error')}")
        nannyml = peers.get("nannyml", {"error": peers.get("error", "skipped")})
        if "calculate_seconds" in nannyml:
            calc, fit = nannyml["calculate_seconds"], nannyml["fit_seconds"]
            log(
                f"{'NannyML ' + nannyml['version'] + ' univariate drift: calculate':46} "
                f"{calc:9.4f} {calc / ours_seconds:9.1f}  ks, js, wasserstein; alerts on "
                f"{nannyml['alerts']}/{args.features} features (*)"
            )
            log(
                f"{'NannyML univariate drift: fit on reference':46} {fit:9.4f} "
                f"{fit / ours_seconds:9.1f}  fit + calculate vs ours incl. profile build "
                f"{(fit + calc) / (ours_seconds + build_seconds):.1f}x"
            )
            log(
                "(*) NannyML sets thresholds from the spread of the statistic across reference "
                "chunks; with one chunk per period they are degenerate: a timing comparison only"
            )
        else:
            log(f"note: NannyML skipped: {nannyml.get('error')}")
        if "peak_rss_mb" in peers:
            log(f"peers' process peak RSS: {peers['peak_rss_mb']:.0f} MiB")
    log("")
    log(
        f"memory: window array {window_mb:.1f} MiB; ours peak extra {extra / 2**20:.1f} MiB "
        f"({extra / current.nbytes:.2f}x the window); scipy loop peak extra "
        f"{scipy_extra / 2**20:.1f} MiB"
    )
    log(f"server path: bin_counts of one {args.features}-feature row: {row_us:.1f} us")
    log(f"default thresholds: {DEFAULT_THRESHOLDS}")
    for label, met in targets:
        log(f"target {label}: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
