"""Line coverage per package of operator/modelops, from the .coverage file a `--cov` run left.

    python3 -m pytest ... --cov            # measures (subprocesses too, see [tool.coverage])
    python3 tests/coverage_packages.py [--fail-under 90] [controller drift serving training]

Prints one line per package (statements, missed, percentage) and exits 1 when any of the named
packages (default: controller, drift, serving, training) is under ``--fail-under``.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from collections import defaultdict
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "operator" / "modelops"
DEFAULT_PACKAGES = ("controller", "drift", "serving", "training")


def per_package(data_file: Path) -> dict[str, tuple[int, int]]:
    """Package (first folder under modelops/, or "modelops" for its own modules) ->
    (statements, missed)."""
    cov = coverage.Coverage(data_file=str(data_file), config_file=str(ROOT / "pyproject.toml"))
    cov.load()
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    omitted = cov.config.run_omit or []
    for source in sorted(PACKAGE.rglob("*.py")):
        if any(fnmatch.fnmatch(str(source), pattern) for pattern in omitted):
            continue  # generated code, left out in [tool.coverage.run] too
        _, statements, _, missing, _ = cov.analysis2(str(source))
        relative = source.relative_to(PACKAGE)
        package = relative.parts[0] if len(relative.parts) > 1 else "modelops"
        totals[package][0] += len(statements)
        totals[package][1] += len(missing)
    return {name: (s, m) for name, (s, m) in sorted(totals.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", default=list(DEFAULT_PACKAGES))
    parser.add_argument("--fail-under", type=float, default=0.0)
    parser.add_argument("--data-file", type=Path, default=ROOT / ".coverage")
    args = parser.parse_args()
    if not args.data_file.exists():
        sys.stderr.write(f"{args.data_file} not found: run pytest with --cov first\n")
        return 2
    rows = per_package(args.data_file)
    failed = []
    print(f"{'package':<12} {'lines':>6} {'missed':>6} {'cover':>7}")
    for name, (statements, missed) in rows.items():
        percent = 100.0 * (statements - missed) / statements if statements else 100.0
        mark = ""
        if name in args.packages and percent < args.fail_under:
            failed.append(name)
            mark = f"  < {args.fail_under:g} %"
        print(f"{name:<12} {statements:>6} {missed:>6} {percent:>6.1f}%{mark}")
    if failed:
        print(f"line coverage under {args.fail_under:g} %: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
