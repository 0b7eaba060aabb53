"""CSV reading: columns by name, missing values, and errors that name the bad cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelops.training import data
from modelops.training.data import (
    feature_matrix,
    missing_mask,
    read_csv,
    read_header,
    sha256_file,
    target_column,
    write_csv,
)
from modelops.training.errors import DataError, QualityGateError


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_reads_columns_by_name_in_any_order(tmp_path: Path) -> None:
    path = write(tmp_path, "b,extra,a,y\n2,x,1,0\n4,z,3,1\n")
    table = read_csv(path, numeric=["a", "b"], text=["y"])
    assert table.columns == ("b", "extra", "a", "y")
    assert table.rows == 2
    matrix = feature_matrix(table, ["a", "b"])
    np.testing.assert_array_equal(matrix, [[1.0, 2.0], [3.0, 4.0]])


def test_missing_tokens_and_non_finite_numbers_become_nan(tmp_path: Path) -> None:
    path = write(tmp_path, "a,y\n1.5,0\n,1\nNA,0\nnull,1\n inf ,0\nNaN,1\n-2e3,0\n")
    values = feature_matrix(read_csv(path, numeric=["a"]), ["a"])[:, 0]
    assert values[0] == 1.5
    assert values[-1] == -2000.0
    assert np.isnan(values[1:6]).all()


def test_booleans_as_pandas_writes_them_are_one_and_zero(tmp_path: Path) -> None:
    path = write(tmp_path, "flag,y\nTrue,0\nFalse,1\n true ,0\nFALSE,1\n,0\n1,1\n")
    values = feature_matrix(read_csv(path, numeric=["flag"]), ["flag"])[:, 0]
    np.testing.assert_array_equal(values, [1.0, 0.0, 1.0, 0.0, np.nan, 1.0])
    with pytest.raises(DataError, match=r"column 'flag', line 2: 'yes' is not a number"):
        feature_matrix(read_csv(write(tmp_path, "flag\nyes\n"), numeric=["flag"]), ["flag"])


def test_header_names_are_stripped_and_a_bom_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeff a , y \n1,0\n")
    assert read_csv(path).columns == ("a", "y")
    assert read_header(path) == ("a", "y")


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "a,y\n1,0\n\n2,1\n\nabc,0\n")
    assert read_csv(path).rows == 3
    with pytest.raises(DataError, match=r"column 'a', line 6: 'abc' is not a number"):
        read_csv(path, numeric=["a"])


def test_rows_are_parsed_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "CHUNK_ROWS", 4)
    path = write(tmp_path, "a,b\n" + "".join(f"{i},{-i}\n" for i in range(10)) + "x,1\n")
    table = read_csv(path, numeric=["b"], text=["a"])
    np.testing.assert_array_equal(table.numeric("b"), [*(-np.arange(10.0)), 1.0])
    assert table.text["a"][-1] == "x"
    with pytest.raises(DataError, match="line 12: 'x' is not a number"):
        read_csv(path, numeric=["a"])


def test_a_requested_column_must_exist(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has no column 'c'"):
        read_csv(write(tmp_path, "a,b\n1,2\n"), numeric=["a", "c"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("a,,y\n1,2,3\n", "empty column name"),
        ("a,a,y\n1,2,3\n", "duplicate column names"),
        ("a,y\n1,2\n3\n", "line 3: expected 2 fields"),
        ("a,y\n1,2,3\n", "line 2: expected 2 fields"),
        ('a,y\n"1"x,2\n', "not valid CSV"),
        ('a,y\n"1,2\n', "unexpected end of data"),
    ],
)
def test_malformed_files_are_refused_with_a_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_csv(write(tmp_path, text))


def test_non_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,y\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_csv(path)


def test_too_many_rows_fail_the_gate_while_reading(tmp_path: Path) -> None:
    path = write(tmp_path, "a,y\n" + "1,0\n" * 11)
    assert read_csv(path, max_rows=11).rows == 11
    with pytest.raises(QualityGateError, match="more than 10 rows"):
        read_csv(path, max_rows=10)


def test_integer_labels_stay_integers(tmp_path: Path) -> None:
    table = read_csv(write(tmp_path, "a,y\n1,0\n1,1.0\n1,\n1,2\n1,NA\n"), text=["y"])
    target = target_column(table, "y", "classification")
    assert target.values.dtype == np.int64
    assert target.present.tolist() == [True, True, False, True, False]
    assert target.values[target.present].tolist() == [0, 1, 2]


def test_text_labels_stay_text(tmp_path: Path) -> None:
    table = read_csv(write(tmp_path, "a,y\n1, setosa\n1,virginica\n1,1\n1,\n"), text=["y"])
    target = target_column(table, "y", "classification")
    assert target.values[target.present].tolist() == ["setosa", "virginica", "1"]
    assert target.present.tolist() == [True, True, True, False]


def test_text_labels_on_request_even_when_they_look_like_integers(tmp_path: Path) -> None:
    table = read_csv(write(tmp_path, "a,y\n1,1\n1,2\n"), text=["y"])
    target = target_column(table, "y", "classification", text_labels=True)
    assert target.values.tolist() == ["1", "2"]


def test_regression_target_must_be_numeric(tmp_path: Path) -> None:
    path = write(tmp_path, "y\n1.5\n\nhigh\n")
    with pytest.raises(DataError, match="column 'y', line 4: 'high' is not a number"):
        read_csv(path, numeric=["y"])
    table = read_csv(write(tmp_path, "y\n1.5\n\nNA\n2\n"), numeric=["y"])
    target = target_column(table, "y", "regression")
    assert target.present.tolist() == [True, False, True]


def test_write_csv_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    x = np.array([[1.25, np.nan], [3.0, -4.5]])
    y = np.array([0, 1])
    path = tmp_path / "out.csv"
    write_csv(path, ["a", "b", "y"], x, y)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    table = read_csv(path, numeric=["a", "b"], text=["y"])
    np.testing.assert_array_equal(feature_matrix(table, ["a", "b"]), x)
    assert target_column(table, "y", "classification").values.tolist() == [0, 1]
    assert len(sha256_file(path)) == 64


def test_categorical_features_make_the_servers_object_matrix(tmp_path: Path) -> None:
    path = write(tmp_path, "colour,size\nred,1.5\n,2\nNA,\nblue,3\n")
    table = read_csv(path, numeric=["size"], text=["colour"])
    matrix = feature_matrix(table, ["size", "colour"], categorical=["colour"])
    assert matrix.dtype == object
    assert matrix[:, 1].tolist() == ["red", None, None, "blue"]
    assert matrix[0, 0] == 1.5
    assert missing_mask(matrix).tolist() == [
        [False, False],
        [False, True],
        [True, True],
        [False, False],
    ]
    numbers = feature_matrix(table, ["size"])
    assert missing_mask(numbers)[:, 0].tolist() == [False, False, True, False]
