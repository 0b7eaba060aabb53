"""`modelops drift report`: verdicts, exit codes and one clear line for every bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelops.drift import build_profile
from modelops.drift_report import main

HEADER = ["x", "y", "colour", "target"]


def write_csv(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sample_rows(seed: int, rows: int, shift: float = 0.0) -> list[list[object]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=shift, size=rows)
    y = rng.exponential(size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows)
    target = rng.integers(0, 2, size=rows)
    return [[f"{a:.6f}", f"{b:.6f}", c, t] for a, b, c, t in zip(x, y, colour, target, strict=True)]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    reference = write_csv(tmp_path / "reference.csv", sample_rows(0, 4000))
    current = write_csv(tmp_path / "current.csv", sample_rows(1, 1000))
    drifted = write_csv(tmp_path / "drifted.csv", sample_rows(2, 1000, shift=1.0))
    rows = sample_rows(0, 4000)
    data = np.array([[float(r[0]), float(r[1]), r[2]] for r in rows], dtype=object)
    profile = build_profile(data, ["x", "y", "colour"], categorical=["colour"])
    profile_path = tmp_path / "profile.json"
    profile_path.write_text(profile.to_json(), encoding="utf-8")
    return {"reference": reference, "current": current, "drifted": drifted, "profile": profile_path}


def run(*args: object) -> int:
    return main(["drift", "report", *(str(a) for a in args)])


def test_no_drift_exits_0_with_a_table(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run("--reference", files["reference"], "--current", files["current"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0].split() == ["feature", "kind", "psi", "ks", "js", "wasserstein",
                                           "chi2", "verdict"]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:-1]}
    assert rows["colour"][1] == "categorical"
    assert rows["colour"][3] == "-"  # no ks for categories
    assert rows["target"][-1] == "ok"
    assert out.splitlines()[-1].startswith("no drift: 4 features; 1000 rows")


def test_drift_exits_1_and_names_the_feature(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        "--reference", files["profile"], "--current", files["drifted"],
        "--ignore-columns", "target", "--format", "json",
    )  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert doc["verdict"] == "drift"
    assert doc["breached_features"] == ["x"]
    assert doc["samples"] == 1000
    x = doc["features"][0]
    assert set(x["scores"]) == {"psi", "ks", "js", "wasserstein"}
    assert x["thresholds"]["psi"] == 0.1
    assert 0 <= x["p_values"]["ks"] < 1e-6


def test_metric_selection_with_thresholds(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        "--reference", files["reference"], "--current", files["drifted"],
        "--metrics", "ks=0.9,chi2", "--format", "json",
    )  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["features"][0]["thresholds"] == {"ks": 0.9}
    assert doc["features"][2]["scores"].keys() == {"chi2"}


def test_profile_and_reference_csv_agree(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--current", files["drifted"], "--ignore-columns", "target", "--format", "json"]
    run("--reference", files["profile"], *common)
    from_profile = json.loads(capsys.readouterr().out)
    run("--reference", files["reference"], *common)
    from_csv = json.loads(capsys.readouterr().out)
    assert from_profile["features"] == from_csv["features"]


def write_bad(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("current_text", "message"),
    [
        ("", "is empty"),
        ("x,y,colour,target\n", "insufficient samples"),
        ("x,y,target\n1,2,0\n", r"lacks columns the reference has: \['colour'\]"),
        ("x,y,colour,target,z\n1,2,red,0,5\n", r"has columns the reference does not: \['z'\]"),
        ("x,y,colour,target\n1,abc,red,0\n", "line 2, column 'y': 'abc' is not a number"),
        ("x,y,colour,target\n1,2,red\n", "line 2: 3 fields, the header has 4"),
        ("x,x,colour,target\n1,2,red,0\n", r"duplicate columns \['x'\]"),
        (b"x,y,colour,target\n\xff\xfe,1,2,3\n", "is not UTF-8 text"),
    ],
)
def test_bad_current_file_gives_one_line_and_exit_2(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    current_text: str | bytes,
    message: str,
) -> None:
    current = write_bad(tmp_path, "bad.csv", current_text)
    code = run("--reference", files["reference"], "--current", current)
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("modelops drift report: error: ")
    assert re.search(message, lines[0])


@pytest.mark.parametrize(
    ("reference_name", "reference_text", "message"),
    [
        ("missing.csv", None, "cannot read"),
        ("profile.json", "{not json", "not valid JSON"),
        ("profile.json", '{"version": 9, "rows": 1, "features": []}', "unsupported profile"),
        ("ref.csv", "x,y\n", "has a header but no rows"),
        ("ref.csv", "x,y\n,1\n,2\n", "no finite values"),
    ],
)
def test_bad_reference_gives_one_line_and_exit_2(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    reference_name: str,
    reference_text: str | None,
    message: str,
) -> None:
    reference = tmp_path / reference_name
    if reference_text is not None:
        reference.write_text(reference_text, encoding="utf-8")
    code = run("--reference", reference, "--current", files["current"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert message in err


def test_unreadable_path_and_bad_metric(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--reference", files["reference"], "--current", tmp_path) == 2
    assert "cannot read" in capsys.readouterr().err
    assert run("--reference", files["reference"], "--current", files["current"],
               "--metrics", "psi,entropy") == 2  # fmt: skip
    assert "unknown metric 'entropy'" in capsys.readouterr().err
    assert run("--reference", files["reference"], "--current", files["current"],
               "--metrics", "psi=-1") == 2  # fmt: skip
    assert "finite and >= 0" in capsys.readouterr().err


def test_missing_values_and_large_windows_are_counted_in_chunks(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = sample_rows(3, 25_000)
    rows[0][0] = ""
    rows[1][2] = ""
    rows[2][0] = "nan"
    current = write_csv(tmp_path / "big.csv", rows)
    code = run("--reference", files["reference"], "--current", current, "--format", "json")
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["samples"] == 25_000


def test_real_process_exit_codes_and_stderr(files: dict[str, Path], tmp_path: Path) -> None:
    command = [sys.executable, "-m", "modelops.drift_report", "drift", "report"]
    drifted = subprocess.run(
        [*command, "--reference", str(files["reference"]), "--current", str(files["drifted"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert drifted.returncode == 1
    assert "DRIFT" in drifted.stdout
    broken = subprocess.run(
        [*command, "--reference", str(files["reference"]), "--current", str(tmp_path / "no.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert broken.returncode == 2
    assert broken.stdout == ""
    assert broken.stderr.count("\n") == 1
    assert "Traceback" not in broken.stderr
