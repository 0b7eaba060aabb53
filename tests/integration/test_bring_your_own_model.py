"""Bring your own model, end to end with real processes: six pipelines of the shapes users fit in
notebooks, each packaged with ``modelops.package``, served by ``modelops serve`` and called
through Triton's HTTP client (binary tensors, one per feature, typed as the columns are), counted
into the profile's bins, and retrained by clone with ``modelops train`` on shifted data.

The expected values are never our own code's: predictions are the pipeline's own ``predict`` /
``predict_proba`` on the DataFrame, bins are the profile's binning of the rows sent, and the
retrained model's structure is compared with the user's pipeline parameter by parameter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.base import BaseEstimator

import modelops
from byom_support import BY_NAME, PIPELINES, TEXT, UserPipeline, customers, v2_request
from modelops.artifacts import ModelMetadata
from modelops.drift import Profile
from modelops.frames import to_matrix
from modelops.serving.loader import load_model_dir
from serving_support import ServerProcess, start_server, stop_server

pytestmark = pytest.mark.integration
http = pytest.importorskip("tritonclient.http")
InferenceServerException = pytest.importorskip("tritonclient.utils").InferenceServerException

ROWS = 40
TRITON_DATATYPES = {"INT64": np.int64, "FP64": np.float64, "BOOL": np.bool_, "BYTES": object}


@dataclass(frozen=True)
class Packaged:
    pipeline: UserPipeline
    model: Any
    directory: Path
    metadata: ModelMetadata


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Packaged]:
    root = tmp_path_factory.mktemp("byom")
    reference, holdout = customers(600, seed=1), customers(200, seed=2)
    found = {}
    for pipeline in PIPELINES:
        model = pipeline.fit(reference)
        x = pipeline.features(reference)
        if pipeline.on_matrix:  # fitted on a matrix, packaged with its column names
            x = reference[pipeline.columns]
        directory = root / pipeline.name / "v1"
        metadata = modelops.package(
            model,
            x,
            version="v1",
            output=directory,
            holdout=(holdout[pipeline.columns], holdout[pipeline.target]),
            name=pipeline.name,
            target=pipeline.target,
        )
        found[pipeline.name] = Packaged(pipeline, model, directory, metadata)
    return found


@pytest.fixture(scope="module")
def servers(
    packaged: dict[str, Packaged], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServerProcess]]:
    logs = tmp_path_factory.mktemp("logs")
    started: dict[str, ServerProcess] = {}
    try:
        for name, case in packaged.items():
            started[name] = start_server(
                f"file://{case.directory}", logs / f"{name}.log", name=name
            )
        yield started
    finally:
        for server in started.values():
            stop_server(server)


NAMES = [p.name for p in PIPELINES]


def test_metadata_describes_the_users_model(packaged: dict[str, Packaged]) -> None:
    for name, case in packaged.items():
        meta, pipeline = case.metadata, case.pipeline
        assert meta.features == pipeline.columns, name  # the model's own input order
        assert meta.target == pipeline.target
        assert meta.name == name
        assert meta.categorical_features == [c for c in pipeline.columns if c in TEXT], name
        classification = pipeline.target == "churn"
        assert meta.task == ("classification" if classification else "regression")
        assert meta.classes == ([0, 1] if classification else None)
        assert set(meta.metrics) >= (
            {"accuracy", "f1", "roc_auc", "log_loss"} if classification else {"rmse"}
        )
        if pipeline.on_matrix:
            assert meta.feature_dtypes == {}  # fed the matrix it was fitted on
        else:
            assert meta.feature_dtypes["age"] == "int64"
            assert meta.feature_dtypes["income"] == "float64"
            assert meta.feature_dtypes["promo"] == "bool"
            if "city" in meta.features:
                text = "category" if pipeline.categories_as_dtype else "object"
                assert meta.feature_dtypes["city"] == text
        on_disk = json.loads((case.directory / "metadata.json").read_text())
        assert ModelMetadata.model_validate(on_disk) == meta


def triton_inputs(frame: pd.DataFrame, meta: ModelMetadata) -> list[Any]:
    """One binary tensor per feature, typed the way a client types the column."""
    inputs = []
    for tensor in v2_request(frame, meta.features, meta.feature_dtypes)["inputs"]:
        values = np.asarray(tensor["data"], dtype=TRITON_DATATYPES[tensor["datatype"]])
        infer_input = http.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
        infer_input.set_data_from_numpy(values, binary_data=True)
        inputs.append(infer_input)
    return inputs


@pytest.mark.parametrize("name", NAMES)
def test_served_predictions_equal_the_pipelines_own(
    name: str, packaged: dict[str, Packaged], servers: dict[str, ServerProcess]
) -> None:
    case = packaged[name]
    rows = customers(ROWS, seed=9, shift=0.5)
    x = case.pipeline.features(rows)
    outputs = ["predict", *(["predict_proba"] if hasattr(case.model, "predict_proba") else [])]
    client = http.InferenceServerClient(f"127.0.0.1:{servers[name].port}")
    result = client.infer(
        name,
        triton_inputs(rows, case.metadata),
        outputs=[http.InferRequestedOutput(o) for o in outputs],
    )
    assert_same(result, case.model, x, outputs)


@pytest.mark.parametrize("name", NAMES)
def test_missing_values_are_the_pipelines_to_handle(
    name: str, packaged: dict[str, Packaged], servers: dict[str, ServerProcess]
) -> None:
    """NaN (over binary FP64) reaches the pipeline: imputed or handled natively where the
    pipeline does, refused with scikit-learn's own reason (400) where it does not."""
    case = packaged[name]
    rows = customers(ROWS, seed=12)
    rows.loc[::5, "income"] = np.nan
    x = case.pipeline.features(rows)
    client = http.InferenceServerClient(f"127.0.0.1:{servers[name].port}")
    try:
        case.model.predict(x)
    except ValueError:
        with pytest.raises(InferenceServerException, match=r"\[400\].*Input X contains NaN"):
            client.infer(name, triton_inputs(rows, case.metadata))
        return
    outputs = ["predict", *(["predict_proba"] if hasattr(case.model, "predict_proba") else [])]
    result = client.infer(
        name,
        triton_inputs(rows, case.metadata),
        outputs=[http.InferRequestedOutput(o) for o in outputs],
    )
    assert_same(result, case.model, x, outputs)


def assert_same(result: Any, model: Any, x: Any, outputs: list[str]) -> None:
    want = model.predict(x)
    if want.dtype.kind == "f":
        np.testing.assert_allclose(result.as_numpy("predict"), want, rtol=1e-9)
    else:
        np.testing.assert_array_equal(result.as_numpy("predict"), want)
    if "predict_proba" in outputs:
        np.testing.assert_allclose(
            result.as_numpy("predict_proba"), model.predict_proba(x), rtol=1e-9
        )


def bin_counts(server: ServerProcess) -> dict[tuple[str, str], float]:
    with server.client() as client:
        text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return {
        (s.labels["feature"], s.labels["bin"]): s.value
        for s in families["modelops_feature_bin"].samples
    }


@pytest.mark.parametrize("name", NAMES)
def test_served_rows_are_counted_into_the_profiles_bins(
    name: str, packaged: dict[str, Packaged], servers: dict[str, ServerProcess]
) -> None:
    case, server = packaged[name], servers[name]
    meta = case.metadata
    rows = customers(120, seed=10, shift=1.0)
    rows.loc[:4, "city"] = "coimbra"  # a city the reference never had: the unseen bin
    before = bin_counts(server)
    with server.client() as client:
        for start in range(0, len(rows), 40):
            doc = v2_request(rows.iloc[start : start + 40], meta.features, meta.feature_dtypes)
            response = client.post(f"/v2/models/{name}/infer", json=doc)
            assert response.status_code == 200, response.text
    after = bin_counts(server)
    profile = Profile.from_json((case.directory / "profile.json").read_text())
    expected = profile.bin_counts(to_matrix(rows, meta.features, meta.categorical_features))
    for j, feature in enumerate(profile.features):
        counted = [
            after.get((feature.name, str(b)), 0) - before.get((feature.name, str(b)), 0)
            for b in range(feature.n_bins)
        ]
        assert counted == expected[j, : feature.n_bins].tolist(), (name, feature.name)
    assert sum(expected[0]) == len(rows)


def structure(model: Any) -> dict[str, str]:
    """Every parameter of the model and its steps but the seeds, as comparable text."""
    return {
        key: repr(value)
        for key, value in model.get_params(deep=True).items()
        if not key.endswith("random_state")
        and not isinstance(value, BaseEstimator)
        and not (isinstance(value, list) and value and isinstance(value[0], tuple))
    }


def retrain(case: Packaged, fresh: pd.DataFrame, root: Path) -> subprocess.CompletedProcess[str]:
    data = root / f"{case.pipeline.name}-fresh.csv"
    fresh[[*case.pipeline.columns, case.pipeline.target]].to_csv(data, index=False)
    command = [
        sys.executable, "-m", "modelops", "train",
        "--data-uri", f"file://{data}",
        "--base-model-uri", f"file://{case.directory}",
        "--output-uri", f"file://{case.directory.parent}",
        "--version", "v2", "--seed", "5",
        "--termination-log", str(root / f"{case.pipeline.name}-result.json"),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.parametrize("name", NAMES)
def test_modelops_train_retrains_a_clone_on_shifted_data(
    name: str, packaged: dict[str, Packaged], tmp_path: Path
) -> None:
    case = packaged[name]
    fresh = customers(800, seed=4, shift=1.0)
    done = retrain(case, fresh, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / f"{name}-result.json").read_text())
    assert result["version"] == "v2"

    retrained = load_model_dir(case.directory.parent / "v2")
    champion = case.model
    assert type(retrained.estimator) is type(champion)
    assert structure(retrained.estimator) == structure(champion)
    seeds = {
        k: v for k, v in retrained.estimator.get_params().items() if k.endswith("random_state")
    }
    assert all(v == 5 for v in seeds.values()), seeds
    meta = retrained.metadata
    assert meta.features == case.metadata.features
    assert meta.feature_dtypes == case.metadata.feature_dtypes  # text stays text
    assert meta.categorical_features == case.metadata.categorical_features
    assert set(result["baseline"]) == set(result["metrics"])

    # It learned the shifted data: on new shifted rows it is not the champion, and where the
    # shift turned the churn signal around, it is right where the champion is wrong.
    probe = customers(300, seed=11, shift=1.0)
    x, truth = case.pipeline.features(probe), probe[case.pipeline.target].to_numpy()
    got, before = retrained.estimator.predict(x), champion.predict(x)
    assert not np.allclose(got, before)
    if case.pipeline.target == "churn":
        assert np.mean(got == truth) > np.mean(before == truth) + 0.15, name
        assert result["metrics"]["accuracy"] > result["baseline"]["accuracy"]


def test_modelops_package_cli_packages_a_saved_pipeline(tmp_path: Path) -> None:
    """The CLI path: a pipeline saved with skops in a notebook, CSV files, one command."""
    import skops.io

    pipeline = BY_NAME["columntransformer-hgb"]
    reference, holdout = customers(400, seed=1), customers(100, seed=2)
    model_file = tmp_path / "churn.skops"
    fitted = pipeline.fit(reference)
    skops.io.dump(fitted, model_file)
    reference.to_csv(tmp_path / "reference.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    command = [
        sys.executable, "-m", "modelops", "package",
        "--model", str(model_file),
        "--reference-data", str(tmp_path / "reference.csv"),
        "--holdout-data", str(tmp_path / "holdout.csv"),
        "--target", "churn", "--version", "v1", "--name", "churn",
        "--output", str(tmp_path / "model"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    loaded = load_model_dir(tmp_path / "model")
    assert loaded.metadata.features == pipeline.columns  # not `bill`: the model never saw it
    assert loaded.metadata.data_uri == (tmp_path / "reference.csv").as_uri()
    assert loaded.metadata.metrics["accuracy"] > 0.7
    x = pipeline.features(holdout)
    np.testing.assert_array_equal(loaded.estimator.predict(x), fitted.predict(x))


#: What predicts: the compiled predictor covers the models it knows that are fed a numeric matrix
#: (here the forest behind an imputer); every pipeline fed a DataFrame is scikit-learn's own.
PREDICTOR = {
    "columntransformer-hgb": "scikit-learn",
    "polynomial-ridge": "scikit-learn",
    "hgb-native-categorical": "scikit-learn",
    "knn-scaled": "scikit-learn",
    "svc-probability": "scikit-learn",
    "matrix-without-names": "compiled",
}


def test_model_info_says_which_predictor_serves(servers: dict[str, ServerProcess]) -> None:
    found = {}
    for name, server in servers.items():
        with server.client() as client:
            text = client.get("/metrics").text
        (info,) = {f.name: f for f in text_string_to_metric_families(text)}[
            "modelops_model_info"
        ].samples
        found[name] = info.labels["predictor"]
    assert found == PREDICTOR
