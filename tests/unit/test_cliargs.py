"""Flags that also read MODELOPS_* variables: flag beats variable beats default."""

from __future__ import annotations

import argparse

import pytest

from modelops.cliargs import env_option, env_switch, non_negative_int, positive_int


def parser_with_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    env_option(parser, "--uri", "MODELOPS_T_URI", "a required value")
    env_option(parser, "--rows", "MODELOPS_T_ROWS", "rows", positive_int, 10)
    env_switch(parser, "--unsafe", "MODELOPS_T_UNSAFE", "a switch")
    return parser


def test_flag_beats_variable_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELOPS_T_URI", "file:///from-env")
    monkeypatch.setenv("MODELOPS_T_ROWS", "7")
    args = parser_with_options().parse_args([])
    assert (args.uri, args.rows, args.unsafe) == ("file:///from-env", 7, False)
    args = parser_with_options().parse_args(["--uri", "file:///flag", "--rows", "3"])
    assert (args.uri, args.rows) == ("file:///flag", 3)
    monkeypatch.delenv("MODELOPS_T_ROWS")
    assert parser_with_options().parse_args([]).rows == 10


def test_a_required_flag_is_satisfied_by_its_variable_only_when_not_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELOPS_T_URI", "")
    with pytest.raises(SystemExit):
        parser_with_options().parse_args([])


@pytest.mark.parametrize(("word", "on"), [("true", True), ("1", True), ("On", True), ("no", False)])
def test_switch_variable(monkeypatch: pytest.MonkeyPatch, word: str, on: bool) -> None:
    monkeypatch.setenv("MODELOPS_T_URI", "x")
    monkeypatch.setenv("MODELOPS_T_UNSAFE", word)
    assert parser_with_options().parse_args([]).unsafe is on


def test_a_bad_variable_value_is_an_argparse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELOPS_T_URI", "x")
    monkeypatch.setenv("MODELOPS_T_ROWS", "many")
    with pytest.raises((SystemExit, argparse.ArgumentError)):
        parser_with_options().parse_args([])


def test_integer_types() -> None:
    assert non_negative_int("0") == 0
    assert positive_int("5") == 5
    for bad, kind in (("-1", non_negative_int), ("0", positive_int), ("x", positive_int)):
        with pytest.raises(argparse.ArgumentTypeError):
            kind(bad)
