"""Safe loading of model directories (modelops.serving.loader)."""

from __future__ import annotations

import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer

from modelops.artifacts import METADATA_FILE, MODEL_FILE, PROFILE_FILE, UNSAFE_MODEL_FILE
from modelops.serving.loader import (
    TRUSTED_TYPES,
    ModelLoadError,
    load_model_dir,
    load_skops,
    save_model,
)
from serving_support import (
    TouchOnLoad,
    make_model_dir,
    write_function_reference,
    write_skops_payload,
)


@pytest.mark.parametrize("kind", ["classifier", "regressor", "forest", "categorical"])
def test_saved_models_load_and_predict_the_same(tmp_path: Path, kind: str) -> None:
    case = make_model_dir(tmp_path, kind)
    loaded = load_model_dir(case.path)
    np.testing.assert_array_equal(loaded.estimator.predict(case.X), case.estimator.predict(case.X))
    assert loaded.metadata.features == case.features
    assert loaded.profile.feature_names == tuple(case.features)
    assert loaded.model_file.name == MODEL_FILE
    assert not loaded.unsafe


def test_save_model_to_a_file_path_and_atomically(tmp_path: Path) -> None:
    estimator = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    written = save_model(estimator, tmp_path / "custom.skops")
    assert written == tmp_path / "custom.skops"
    assert [p.name for p in tmp_path.iterdir()] == ["custom.skops"]  # no temporary file left


def test_save_model_refuses_what_the_server_would_refuse(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="untrusted"):
        save_model(FunctionTransformer(func=math.sqrt), tmp_path)
    assert not (tmp_path / MODEL_FILE).exists()


def test_trusted_types_are_code_not_data() -> None:
    assert isinstance(TRUSTED_TYPES, tuple)
    assert all(t.startswith(("sklearn.", "numpy.", "scipy.", "functools.")) for t in TRUSTED_TYPES)


def test_skops_object_of_untrusted_type_is_refused_and_never_built(tmp_path: Path) -> None:
    marker = tmp_path / "skops-payload-ran"
    file = tmp_path / MODEL_FILE
    write_skops_payload(file, marker)
    with pytest.raises(ModelLoadError, match=r"serving_support\.TouchOnLoad"):
        load_skops(file)
    assert not marker.exists()
    # Control: the payload is real; trusting it on purpose does run it.
    skops.io.load(file, trusted=["serving_support.TouchOnLoad"])
    assert marker.exists()


@pytest.mark.parametrize(("module", "function"), [("os", "system"), ("builtins", "eval")])
def test_skops_reference_to_a_dangerous_function_is_refused(
    tmp_path: Path, module: str, function: str
) -> None:
    file = tmp_path / MODEL_FILE
    write_function_reference(file, module, function)
    with pytest.raises(ModelLoadError, match=rf"{module}\.{function}"):
        load_skops(file)


def _model_dir_with(tmp_path: Path, model_name: str, content: bytes) -> Path:
    case = make_model_dir(tmp_path, "classifier")
    (case.path / MODEL_FILE).unlink()
    (case.path / model_name).write_bytes(content)
    return case.path


def test_malicious_pickle_is_refused_without_opt_in(tmp_path: Path) -> None:
    marker = tmp_path / "pickle-payload-ran"
    path = _model_dir_with(tmp_path, UNSAFE_MODEL_FILE, pickle.dumps(TouchOnLoad(str(marker))))
    with pytest.raises(ModelLoadError, match="allow-unsafe-pickle"):
        load_model_dir(path)
    assert not marker.exists()


def test_pickle_disguised_as_skops_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pickle-payload-ran"
    path = _model_dir_with(tmp_path, MODEL_FILE, pickle.dumps(TouchOnLoad(str(marker))))
    with pytest.raises(ModelLoadError, match="not a readable skops file"):
        load_model_dir(path, allow_unsafe_pickle=True)
    assert not marker.exists()


def test_pickle_loads_only_with_opt_in_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import joblib

    case = make_model_dir(tmp_path, "classifier")
    joblib.dump(case.estimator, case.path / UNSAFE_MODEL_FILE)
    (case.path / MODEL_FILE).unlink()
    loaded = load_model_dir(case.path, allow_unsafe_pickle=True)
    assert loaded.unsafe
    np.testing.assert_array_equal(loaded.estimator.predict(case.X), case.estimator.predict(case.X))
    assert any(r.levelname == "WARNING" and "pickle" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no-model", "holds no model.skops"),
        ("no-profile", "profile.json is missing"),
        ("bad-metadata", "not valid metadata"),
        ("bad-profile", "not a valid profile"),
        ("feature-mismatch", "differ from metadata features"),
        ("not-a-dir", "does not exist"),
        ("truncated-model", "not a readable skops file"),
    ],
)
def test_broken_model_dirs_give_a_clear_error(tmp_path: Path, breakage: str, message: str) -> None:
    case = make_model_dir(tmp_path, "classifier")
    path = case.path
    if breakage == "no-model":
        (path / MODEL_FILE).unlink()
    elif breakage == "no-profile":
        (path / PROFILE_FILE).unlink()
    elif breakage == "bad-metadata":
        (path / METADATA_FILE).write_text('{"version": ""}')
    elif breakage == "bad-profile":
        (path / PROFILE_FILE).write_text("[]")
    elif breakage == "feature-mismatch":
        other = make_model_dir(tmp_path, "regressor")
        shutil.copy(other.path / PROFILE_FILE, path / PROFILE_FILE)
    elif breakage == "not-a-dir":
        path = tmp_path / "nowhere"
    elif breakage == "truncated-model":
        data = (path / MODEL_FILE).read_bytes()
        (path / MODEL_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=message):
        load_model_dir(path)
