"""Mutation testing of the decision modules: run mutmut, then write mutation-report.md.

    python3 tests/mutation_report.py run [--jobs N]   # `make mutation`: mutate, test, report
    python3 tests/mutation_report.py run --only 'modelops.drift.binning*'   # some mutants only
    python3 tests/mutation_report.py report           # the report of the last run only
    python3 tests/mutation_report.py report --partial # ... while mutants are left untested

mutmut (3.x) names a mutant's module after its file's path and strips only a leading ``src/``;
the package lives in ``operator/modelops``. So the run happens in ``build/mutation/``, where
``src`` links to ``operator/`` and ``tests`` to ``tests/``, and ``[tool.mutmut]`` in
pyproject.toml lists the modules to mutate relative to that folder. mutmut keeps its results in
``build/mutation/mutants/`` and re-tests only the functions that changed since the last run.

The report gives the score (killed / total, per module and overall) and every surviving mutant
with its diff. Mutants written down as equivalent (``EQUIVALENT`` below, each with its reason)
are listed apart and still counted as survivors in the raw score.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "mutation"
REPORT = ROOT / "mutation-report.md"
VENV = WORK / "venv"
TARGET = 0.90


def _same(reason: str, module: str, function: str, *numbers: int) -> dict[str, str]:
    return {f"modelops.{module}.{function}__mutmut_{n}": reason for n in numbers}


# Survivors judged equivalent (no behaviour anyone could observe changes), with the reason. A
# mutant listed here that a test kills later is simply no longer a survivor.
EQUIVALENT: dict[str, str] = {
    **_same(
        "recounting from now also when fewer than MAX_COUNTED_MISSES times were missed finds "
        "the same latest time <= now that the loop found (due is never None with misses)",
        "controller.trigger",
        "x_schedule_state",
        37,
    ),
    **_same(
        "the key only tells policies apart in operator memory; the uid alone does that (a "
        "recreated policy of the same name is a new key: the uid mutants are killed)",
        "controller.driftpolicy",
        "x__key",
        4,
        5,
        6,
        7,
        8,
        9,
    ),
    **_same(
        "Python >= 3.11 (required) parses a trailing Z in datetime.fromisoformat itself",
        "controller.driftpolicy",
        "x__parse_time",
        7,
        8,
    ),
    **_same(
        "RetrainingStatus.result defaults to Running",
        "controller.driftpolicy",
        "x__record_started",
        12,
    ),
    **_same(
        "HistoryEntry has no field whose alias differs from its name",
        "controller.driftpolicy",
        "x__switch_model",
        21,
        23,
        25,
    ),
    **_same(
        "the same tick validated the spec before following the retraining "
        "(modelDeploymentRef.name is required), so these defaults are never taken",
        "controller.driftpolicy",
        "x__follow_rollout",
        4,
        6,
        8,
        10,
        12,
        14,
        22,
    ),
    **_same(
        "the API server always sets metadata.generation (>= 1) on a custom resource",
        "controller.driftpolicy",
        "x__follow_rollout",
        46,
    ),
    **_same(
        "spec.model is required by the ModelDeployment schema, so the default is never taken",
        "controller.driftpolicy",
        "x__follow_rollout",
        50,
        52,
    ),
    **_same(
        "candidate is read only when the trigger decided to start, which needs an enabled "
        "retraining section, where it is always set",
        "controller.driftpolicy",
        "x_maybe_retrain",
        6,
        93,
    ),
    **_same(
        "without a retraining section decide_trigger answers RetrainingDisabled before it looks "
        "at the cooldown or max_concurrent given in its place",
        "controller.driftpolicy",
        "x_maybe_retrain",
        87,
        88,
        91,
    ),
    **_same(
        "adopted=None is falsy like adopted=False",
        "controller.driftpolicy",
        "x_maybe_retrain",
        227,
    ),
    **_same(
        "ResourceRequirements has no field whose alias differs from its name",
        "controller.driftpolicy",
        "x_maybe_retrain",
        153,
        155,
        157,
    ),
    **_same(
        "RetrainingStatus.result defaults to Running",
        "controller.driftpolicy",
        "x__record_started",
        24,
    ),
    **_same(
        "without a retraining section decide_trigger answers RetrainingDisabled before it looks "
        "at the max_concurrent given in its place",
        "controller.driftpolicy",
        "x_maybe_retrain",
        94,
    ),
    **_same(
        "candidate is unset only without an enabled retraining section, and decide_trigger then "
        "never answers start: the condition branch is taken whatever candidate holds",
        "controller.driftpolicy",
        "x_maybe_retrain",
        7,
        96,
    ),
    **_same(
        "ResourceRequirements (limits, requests) has no field whose alias differs from its name",
        "controller.driftpolicy",
        "x_start_retraining",
        51,
        53,
        55,
    ),
    **_same(
        "adopted is read only as a truth value: None words the message as False does (Started)",
        "controller.driftpolicy",
        "x_start_retraining",
        141,
    ),
    **_same(
        "Tick.started is read only as a truth value (`if run.started`, `or run.started`)",
        "controller.driftpolicy",
        "xǁTickǁ__init__",
        29,
    ),
    **_same(
        "md_spec's first value is never read: with a ModelDeployment the validation overwrites "
        "it (None when invalid), without one `md is None` decides first",
        "controller.driftpolicy",
        "x_run_schedule",
        41,
    ),
    **_same(
        "with retraining disabled decide_scheduled answers RetrainingDisabled before it looks at "
        "the running count; listing the Jobs anyway is a read and changes nothing",
        "controller.driftpolicy",
        "x_run_schedule",
        81,
    ),
    **_same(
        "a Profile has at least one feature (ProfileError otherwise), so the counts matrix "
        "(features x bins) is never empty and the else branch is never taken",
        "controller.driftpolicy",
        "x_judge_input_drift",
        12,
        16,
    ),
    **_same(
        "a served version is never empty (the source refuses a counts document whose version "
        "is ''), so when no version is chosen both '' and 'XXXX' find no pod's counters and "
        "name the same window baseline on every tick",
        "controller.driftpolicy",
        "x_evaluate",
        130,
        143,
    ),
    **_same(
        "supersededJobs grows only in _record_started, which sets lastRetraining in the same "
        "step, and nothing clears lastRetraining: the later Job always has a name, '(gone)' is "
        "never written",
        "controller.driftpolicy",
        "x__follow_superseded",
        84,
        85,
        86,
    ),
    **_same(
        "termination is never None here: without it the result is None and the Job was "
        "already reported ResultUnreadable above",
        "controller.driftpolicy",
        "x__follow_job",
        165,
        166,
    ),
    **_same(
        "the time a window baseline was taken is stored but never read: Windows.baseline_time "
        "has no caller in the operator",
        "controller.driftpolicy",
        "x_evaluate",
        134,
    ),
    **_same(
        "container names are unique within a pod: after the trainer's own status, the rest of "
        "that pod's list holds only other containers, which are skipped anyway",
        "controller.promotion",
        "x_trainer_termination",
        25,
    ),
    **_same(
        "the dict lookup of a str is a fast path: category_key gives the same key for every str "
        "(the empty string is missing either way), and the keys are all str, so looking up None "
        "finds nothing",
        "drift.binning",
        "x__category_indices",
        8,
        9,
        11,
    ),
    **_same(
        "'XXfiubXX' still holds every kind letter of 'fiub' (X is no dtype kind); astype(None) is "
        "float64, and copy=None, like copy=False, returns a float64 batch itself (no copy)",
        "drift.binning",
        "xǁBinnerǁ_numeric_values",
        2,
        5,
        6,
    ),
    **_same(
        "codec names are case-insensitive: UTF-8 is utf-8",
        "drift.binning",
        "x_category_key",
        9,
    ),
    **_same(
        "numpy takes any negative size in reshape as the one to infer",
        "drift.binning",
        "xǁBinnerǁbin_counts",
        12,
    ),
    **_same(
        "a numeric batch of 64 rows then takes the general path, which adds the same broadcast "
        "count to a zero matrix (its buffer is small beside the 64 rows' comparison scratch; "
        "the 1-row case, 22, is killed by its memory use)",
        "drift.binning",
        "xǁBinnerǁbin_counts",
        24,
    ),
    **_same(
        "'XXfiubXX' still holds every kind letter of 'fiub' (X is no dtype kind)",
        "drift.binning",
        "x_numeric_column",
        2,
    ),
    **_same(
        "astype(None) and np.empty without a dtype are float64; copy=True (or the default) only "
        "copies a float64 column that the one caller on that path, _numeric_feature, reads and "
        "filters into a new array anyway; without its argument np.asarray raises TypeError and "
        "the value-by-value conversion gives the same float64 values (numpy converts an object "
        "column with float() too); None written into a float64 array is NaN",
        "drift.binning",
        "x_numeric_column",
        4,
        25,
        5,
        7,
        8,
        11,
        15,
        17,
    ),
    **_same(
        "a categorical feature's row is zero until its own count is written (the numeric paths "
        "write numeric rows only), so = and += agree",
        "drift.binning",
        "xǁBinnerǁbin_counts",
        64,
    ),
    **_same(
        "with no numeric feature, the bounds and edge matrices (a column more by default), "
        "n_edges and numeric_columns (float64 when empty without dtype=intp) are never read: "
        "bin_counts skips the numeric paths; with numeric features numpy's default integer "
        "dtype is already intp",
        "drift.binning",
        "xǁBinnerǁ__init__",
        12,
        14,
        27,
        52,
        54,
    ),
    **_same(
        "a second +inf bound at the end only adds a zero difference (tally at +inf minus tally "
        "at +inf) in the longest features' missing bin, which the missing count is added to "
        "(max_bins is at least len(edges) + 2); a comparison per value more, the same counts",
        "drift.binning",
        "xǁBinnerǁ__init__",
        41,
    ),
    **_same(
        "the missing bin's cell is zero before the missing count is written (past the "
        "differences for the longest features, +inf minus +inf for the others), and the numeric "
        "rows of bin_counts' fresh zero matrix are written only here, so = and += agree",
        "drift.binning",
        "xǁBinnerǁ_add_large_batch_counts",
        21,
        28,
    ),
    **_same(
        "only speed changes: copying the rest of the block from every slice start (stop=None), "
        "or a 1,024-row slice from every row (step 1), writes the same transposed values, the "
        "later copies overwriting with what is already there",
        "drift.binning",
        "x__block_tally",
        8,
        10,
    ),
    **_same(
        "None written into a bool array is False; True padding adds the same constant (the "
        "padding length) to every bound's tally of a feature in that block, and the bin counts "
        "and the finite count are differences of tallies, so it cancels",
        "drift.binning",
        "x__block_tally",
        18,
        19,
    ),
    **_same(
        "reduceat at every word (step 1) makes each sum a single word, whose bytes are 0 or 1, "
        "so adding the bytes gives the same counts; only the scratch (sums as large as the "
        "flags) and the time grow",
        "drift.binning",
        "x__count_set",
        12,
        15,
    ),
    **_same(
        "at least two features per group only sizes the scratch for two when the budget or the "
        "profile allows one (the last group is cut at n_numeric): more scratch memory, the "
        "same counts",
        "drift.binning",
        "x__tally",
        11,
    ),
    **_same(
        "numpy takes any negative size in reshape as the one to infer",
        "drift.statistics",
        "x_kolmogorov_sf",
        12,
    ),
    **_same(
        "the argument is float64 by its type (and integers give the same values); asarray without "
        "a dtype keeps it as it is",
        "drift.statistics",
        "x_kolmogorov_sf",
        5,
    ),
    **_same(
        "no argument divides by zero or makes an invalid value here (tried: 0, +-1e-300, "
        "+-1e200, +-inf, NaN); only overflow (killed) and underflow happen",
        "drift.statistics",
        "x_kolmogorov_sf",
        15,
        17,
        18,
        20,
    ),
    **_same(
        "at exactly x = 0.05, and for x <= 0.05 whatever the placeholder, the next line sets 1; "
        "NaN (no caller passes one: ks_p_value's argument is finite) gets no meaningful value "
        "either way",
        "drift.statistics",
        "x_kolmogorov_sf",
        66,
        68,
    ),
    **_same(
        "at exactly x = 1 the two series agree to one ulp (2e-16 relative)",
        "drift.statistics",
        "x_kolmogorov_sf",
        105,
    ),
    **_same(
        "neither series leaves [0, 1] (the alternating one is at most 2 exp(-2) and positive, "
        "the theta CDF is in [0, 1)), and the 1 set below 0.05 is within it, so the clip never "
        "acts",
        "drift.statistics",
        "x_kolmogorov_sf",
        119,
        123,
        124,
        129,
    ),
    **_same(
        "counts are non-negative, so a row whose total is 0 has only zero counts: 0/0 is "
        "invalid (killed), never a division by zero",
        "drift.statistics",
        "x_proportions",
        9,
        11,
    ),
    **_same(
        "the divergence exceeds 1 only by rounding (1 + 2**-52 at most in 2,000 random disjoint "
        "pairs), and the square root of that is 1.0",
        "drift.statistics",
        "x_jensen_shannon",
        21,
        26,
    ),
    **_same(
        "the middle is 0 only in a bin where p is 0 too, whose term the outer where sets to 0 "
        "whatever it divides by",
        "drift.statistics",
        "x__kl_to_middle",
        27,
        29,
    ),
    **_same(
        "the gaps are absolute values, never below 0",
        "drift.statistics",
        "x_ks_statistic",
        16,
    ),
    **_same(
        "np.diff takes the last axis by default, axis 1 of these matrices",
        "drift.statistics",
        "x_wasserstein",
        19,
    ),
    **_same(
        "the placeholder is read only for metrics that do not apply to the feature, which the "
        "applicability test skips first",
        "drift.evaluate",
        "x__all_scores",
        10,
    ),
    **_same(
        "statistic and dof come from the same rows: always of one length",
        "drift.evaluate",
        "x__all_scores",
        113,
        116,
        117,
    ),
    **_same(
        "assigned into the float64 score array, None becomes NaN",
        "drift.evaluate",
        "x__wasserstein",
        56,
    ),
    **_same(
        "true division of an integer array by an integer is float64 too",
        "drift.profile",
        "x__categorical_feature",
        32,
        34,
    ),
    **_same(
        "a quantile below the top one equals the maximum only when it is tied, and is then found "
        "before the last position; one strictly between the last two values is on neither",
        "drift.profile",
        "x__quantile_edges",
        26,
    ),
    **_same(
        "top_start is 0 only when every value is the maximum: ordered[-1] is then the maximum "
        "too, the step is 0 and nextafter takes over",
        "drift.profile",
        "x__quantile_edges",
        64,
        71,
    ),
    **_same(
        "an empty bin has a zero sum: 0/0 is invalid, never a division by zero",
        "drift.profile",
        "x__bin_centers",
        2,
        4,
    ),
    **_same(
        "np.bincount with weights already returns float64",
        "drift.profile",
        "x__numeric_feature",
        52,
        54,
    ),
    **_same(
        "no quantile is above the maximum, so the position is at most size - 1 and the cap "
        "does not act",
        "drift.profile",
        "x__quantile_edges",
        25,
    ),
    **_same(
        "at position 0 the value below is ordered[0], the quantile itself, and the midpoint of "
        "the two is the quantile",
        "drift.profile",
        "x__quantile_edges",
        45,
    ),
    **_same(
        "_check_profile refuses every non-finite number, so no NaN or infinity reaches json.dumps",
        "drift.profile",
        "xǁProfileǁto_json",
        4,
        7,
        9,
    ),
    **_same(
        "np.errstate only silences numpy's warnings; the values are the same",
        "drift.statistics",
        "x_chi_square",
        38,
        39,
        40,
        41,
    ),
    **_same(
        "np.errstate only silences numpy's warnings; the values are the same",
        "drift.statistics",
        "x_cramers_v",
        1,
        2,
        3,
        4,
    ),
    **_same("astype(None) is float64", "drift.statistics", "x_chi_square", 72),
    **_same("the statistic is already float64", "drift.statistics", "x_kolmogorov_sf", 3),
    **_same(
        "regularised gamma Q: the series and the continued fraction converge to the same value "
        "on either side of x = a + 1 (the switch is for speed); the iteration caps are never "
        "reached; < or <= on a 1e-15 tolerance or on the 1e-300 guard is a tie of probability "
        "zero; Lentz's start 1/tiny or 2/tiny differs by ~1e-300 after the first step; without "
        "the early exit the loop returns the same converged value at its cap; the product is a "
        "probability, not over 1 beyond rounding",
        "drift.statistics",
        "x_regularized_gamma_q",
        11,
        12,
        13,
        19,
        29,
        51,
        61,
        73,
        76,
        81,
        84,
        93,
        94,
        95,
        102,
    ),
    **_same(
        "padded positions carry no mass in either distribution, so the CDF gap across them is "
        "zero wherever they are; a 0/1 float mask selects like the bool mask",
        "drift.evaluate",
        "x__wasserstein",
        7,
        9,
        17,
        18,
    ),
    **_same(
        "np.unique returns as many counts as classes, so strict is never tested",
        "training.quality",
        "x__check_classes",
        12,
        15,
        16,
    ),
    **_same(
        "with every class in the holdout scikit-learn infers the same sorted labels, and with one "
        "missing both forms raise ValueError, which leaves roc_auc out; macro is the default",
        "training.evaluate",
        "x__roc_auc",
        16,
        20,
        21,
    ),
    **_same(
        "zero_division sets only the undefined precision (or recall) of a class that is never "
        "predicted (or never true); its F1 is 0 whatever that value is",
        "training.evaluate",
        "x_classification_metrics",
        17,
        20,
    ),
    **_same("shuffle=True is the default", "training.evaluate", "x_split_holdout", 12),
    **_same(
        "the columns and their datatypes are built one per layout feature (a 2-D tensor's width "
        "is checked against the layout, per-feature inputs are ordered by it), so the lengths "
        "always agree",
        "serving.protocol",
        "x__assemble",
        12,
        17,
        18,
    ),
    **_same(
        "dtype kinds are single letters, and X is none of them",
        "serving.protocol",
        "x__assemble",
        20,
    ),
    **_same(
        "codec names are case-insensitive: UTF-8 is utf-8",
        "serving.protocol",
        "x__decode_raw_strings",
        34,
    ),
    **_same(
        "a finite sum only lets a flat list skip the check for infinity; without it every "
        "matrix is checked value by value, which gives the same answer",
        "serving.protocol",
        "x__finite_sum",
        1,
        2,
    ),
    **_same(
        "the matrix is then checked value by value whatever its data, which gives the same "
        "answer (checking is the safe side)",
        "serving.protocol",
        "x__matrix_from_tensor",
        21,
        24,
    ),
    **_same(
        "astype(None) is float64; copy=None is copy=False for ndarray.astype",
        "serving.protocol",
        "x__matrix_from_tensor",
        10,
        11,
    ),
    **_same(
        "a BYTES tensor taken through the numeric branch gives the same columns: its object "
        "array is never of kind f, and the columns are sliced the same way",
        "serving.protocol",
        "x__matrix_from_tensor",
        30,
        31,
    ),
    **_same(
        "astype(None) is float64; copy=None is copy=False; np.column_stack already returns a "
        "new array, so a second copy of it has the same values, dtype and shape",
        "serving.protocol",
        "x__matrix_from_columns",
        47,
        48,
        50,
        52,
    ),
    **_same("astype(None) is float64", "serving.protocol", "x__numeric_column", 8),
    **_same("astype(None) is float64", "serving.protocol", "x_output_tensor", 35),
    **_same(
        "the one-input fast path and the general list give the same tuple of one tensor",
        "serving.protocol",
        "x_parse_infer_request",
        58,
    ),
    **_same(
        "_request_parameters(None) is {} as well",
        "serving.protocol",
        "x_parse_infer_request",
        82,
    ),
    **_same(
        "bool(None) is False: an absent binary_data_output means no binary outputs either way",
        "serving.protocol",
        "x_wants_binary",
        9,
        11,
    ),
    **_same(
        "the signed-mask memo goes unused, so each call recomputes the same mask from the same "
        "keys (speed only: no caller writes to the mask it is given)",
        "controller.window",
        "xǁLayoutǁsigned",
        3,
        4,
        14,
    ),
    **_same(
        "np.fromiter without its count reads the same len(self.keys) booleans, only without "
        "allocating the array up front (speed only)",
        "controller.window",
        "xǁLayoutǁsigned",
        12,
    ),
    **_same(
        "np.fromiter's default dtype (None) is float64, the dtype it was given",
        "controller.window",
        "xǁCounterVectorǁof",
        3,
    ),
    **_same(
        "np.fromiter without its count reads the same len(counters) values of the mapping, only "
        "without allocating the array up front (speed only)",
        "controller.window",
        "xǁCounterVectorǁof",
        7,
    ),
}

# Unit tests that read files outside tests/ (mutmut runs a copy of tests/ in build/mutation/mutants,
# where ROOT-relative paths do not exist) and test no mutated module, deselected in the staged
# copy of pyproject.toml unless [tool.mutmut] already leaves them out.
OUTSIDE_TESTS = (
    "--deselect=tests/unit/test_serving_grpc_stubs.py::test_regenerating_gives_the_checked_in_files",
)

KILLED = {"killed", "timeout", "caught by type check"}
UNCHECKED = {"not checked", "check was interrupted by user"}


def stage() -> None:
    """build/mutation/: src -> operator/, tests -> tests/, a copy of pyproject.toml."""
    WORK.mkdir(parents=True, exist_ok=True)
    for name, target in (("src", ROOT / "operator"), ("tests", ROOT / "tests")):
        link = WORK / name
        if link.is_symlink() or link.exists():
            if link.is_symlink() and link.resolve() == target:
                continue
            if link.is_dir() and not link.is_symlink():
                shutil.rmtree(link)
            else:
                link.unlink()
        link.symlink_to(os.path.relpath(target, WORK))
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    selection = "pytest_add_cli_args_test_selection = [\n"
    missing = [arg for arg in OUTSIDE_TESTS if f'"{arg}"' not in config]
    if missing and selection in config:
        extra = "".join(f'    "{arg}",\n' for arg in missing)
        config = config.replace(selection, selection + extra, 1)
    (WORK / "pyproject.toml").write_text(config, encoding="utf-8")


def mutmut_python() -> str:
    """The interpreter of build/mutation/venv, with mutmut (the `mutation` extra) installed.

    A venv over the system's site-packages (the project and its test dependencies come from
    there), so that mutmut's own dependencies (click, libcst, textual) stay out of the
    environment that requirements.lock describes.
    """
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", str(VENV)], check=True
        )
    if not (VENV / ".installed").exists():
        with (ROOT / "pyproject.toml").open("rb") as file:
            wanted = tomllib.load(file)["project"]["optional-dependencies"]["mutation"]
        subprocess.run([python, "-m", "pip", "install", "-q", *wanted], check=True)
        (VENV / ".installed").touch()
    return str(python)


def mutmut(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # The editable install puts operator/ on sys.path; mutmut puts mutants/src before it.
    env.pop("PYTHONPATH", None)
    # mutmut forks each mutant's test process from a warm one: an OpenMP or BLAS thread pool
    # (scikit-learn's gradient boosting, numpy) does not survive a fork and the child hangs until
    # the timeout, which mutmut then counts as a kill. One thread each: no pool.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    return subprocess.run(
        [mutmut_python(), "-m", "mutmut", *args],
        cwd=WORK,
        env=env,
        text=True,
        check=False,
        capture_output=capture,
    )


# Runs under mutmut's interpreter in build/mutation: every mutant's status, and the diff of each
# that was not killed, as one JSON document (one process: `mutmut show` per mutant is slow).
COLLECT = r"""
import json
from mutmut.__main__ import walk_mutatable_files
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
found = {}
for path in walk_mutatable_files():
    data = SourceFileMutationData(path=path)
    data.load()
    for name, code in data.exit_code_by_key.items():
        status = status_by_exit_code[code]
        diff = None
        if status not in ("killed", "timeout", "caught by type check", "not checked"):
            diff = get_diff_for_mutant(name, path=path)
        found[name] = {"status": status, "diff": diff}
print(json.dumps(found))
"""


def results() -> dict[str, dict[str, str | None]]:
    """Mutant name -> {"status", "diff"}, from mutmut's own meta files (mutants/**/*.meta)."""
    done = subprocess.run(
        [mutmut_python(), "-c", COLLECT], cwd=WORK, text=True, capture_output=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        return {}
    found: dict[str, dict[str, str | None]] = json.loads(done.stdout.splitlines()[-1])
    return found


def module_of(mutant: str) -> str:
    head = mutant.partition("__mutmut_")[0]
    parts = head.split(".")
    for i, part in enumerate(parts):
        if part.startswith(("x_", "xǁ")):
            return ".".join(parts[:i])
    return head.rpartition(".")[0]


def report(*, partial: bool = False) -> int:
    found = results()
    statuses = {name: str(entry["status"]) for name, entry in found.items()}
    if not statuses:
        sys.stderr.write("no mutmut results: run `make mutation` first\n")
        return 2
    unchecked = sorted(n for n, s in statuses.items() if s in UNCHECKED)
    if unchecked and not partial:
        sys.stderr.write(f"{len(unchecked)} mutants not tested yet: finish `make mutation` first\n")
        return 2
    for name in unchecked:
        del statuses[name]
    per_module: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, status in statuses.items():
        per_module[module_of(name)][status] += 1
    survivors = sorted(n for n, s in statuses.items() if s not in KILLED)
    equivalent = [n for n in survivors if n in EQUIVALENT]
    open_ = [n for n in survivors if n not in EQUIVALENT]
    total = len(statuses)
    killed = total - len(survivors)
    score = killed / total
    adjusted = (killed + len(equivalent)) / total
    lines = [
        "# Mutation report",
        "",
        "`make mutation` (mutmut over the decision modules, the unit tier as the judge).",
        "",
        f"**Score: {killed}/{total} killed ({score:.1%})**; counting the {len(equivalent)} "
        f"equivalent mutants as killed: {adjusted:.1%}. Target: {TARGET:.0%}.",
        "",
        "| module | killed | survived | no tests | other | total | score |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for module in sorted(per_module):
        counts = per_module[module]
        mod_total = sum(counts.values())
        mod_killed = sum(v for k, v in counts.items() if k in KILLED)
        other = mod_total - mod_killed - counts["survived"] - counts["no tests"]
        lines.append(
            f"| {module} | {mod_killed} | {counts['survived']} | {counts['no tests']} | "
            f"{other} | {mod_total} | {mod_killed / mod_total:.1%} |"
        )
    lines += ["", f"## Surviving mutants ({len(open_)})", ""]
    for name in open_:
        diff = str(found[name]["diff"] or "").strip()
        lines += [f"### {name} ({statuses[name]})", "", "```diff", diff, "```", ""]
    lines += [f"## Equivalent mutants ({len(equivalent)})", ""]
    for name in equivalent:
        lines += [f"- `{name}`: {EQUIVALENT[name]}"]
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"mutation score {killed}/{total} = {score:.1%} (with equivalents {adjusted:.1%})")
    for line in lines[8 : 8 + len(per_module) + 2]:
        print(line)
    print(f"{len(open_)} surviving, {len(equivalent)} equivalent: see {REPORT.relative_to(ROOT)}")
    return 0 if adjusted >= TARGET else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument(
        "--jobs", type=int, default=1, help="mutants tested at once (default 1: one core)"
    )
    parser.add_argument(
        "--partial", action="store_true", help="report while mutants are left untested"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run: test only the mutants whose name matches (fnmatch, e.g. "
        "'modelops.drift.binning*'; repeatable); the report is then partial",
    )
    args = parser.parse_args()
    if args.command == "run":
        stage()
        done = mutmut("run", "--max-children", str(args.jobs), *args.only)
        if done.returncode != 0:
            sys.stderr.write(f"mutmut run exited {done.returncode}\n")
            return done.returncode
    return report(partial=args.partial or bool(args.only))


if __name__ == "__main__":
    sys.exit(main())
