"""The server's metrics collector (modelops.serving.metrics)."""

from __future__ import annotations

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from modelops.drift import build_profile
from modelops.serving.metrics import ServingMetrics


def test_bulk_binning_counts_every_row_exactly_once() -> None:
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(500, 3))
    profile = build_profile(reference, ["a", "b", "c"])
    metrics = ServingMetrics("m", "v1", profile, {}, chunk_rows=50)
    batches = [rng.normal(loc=0.5, size=(int(n), 3)) for n in rng.integers(1, 40, size=30)]
    for batch in batches:
        metrics.observe_rows(batch)
        metrics.observe_request(200, 0.001)  # as the server does once the response went out
    assert metrics.bins is not None
    assert metrics.bins.pending_rows < 50  # binned along the way, not only at the end
    everything = np.concatenate(batches)
    np.testing.assert_array_equal(metrics.feature_bin_counts(), profile.bin_counts(everything))
    assert metrics.rows == len(everything)


def test_switched_off_counting_still_counts_rows() -> None:
    profile = build_profile(np.arange(20.0).reshape(10, 2), ["a", "b"])
    metrics = ServingMetrics("m", "v1", profile, {}, count_bins=False)
    metrics.observe_rows(np.zeros((7, 2)))
    assert metrics.rows == 7
    assert not metrics.feature_bin_counts().any()


def test_latency_histogram_is_cumulative_with_inclusive_bounds() -> None:
    profile = build_profile(np.arange(20.0).reshape(10, 2), ["a", "b"])
    metrics = ServingMetrics("m", "v1", profile, {}, buckets=(0.001, 0.01))
    for seconds in (0.0005, 0.001, 0.005, 0.5):
        metrics.observe_request(200, seconds)
    metrics.observe_request(400, 0.002)
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    buckets = {
        s.labels["le"]: s.value
        for s in families["modelops_inference_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets == {"0.001": 2, "0.01": 4, "+Inf": 5}
    codes = {s.labels["code"]: s.value for s in families["modelops_inference_requests"].samples}
    assert codes == {"200": 4, "400": 1}
