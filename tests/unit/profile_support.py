"""Hand-made feature profiles for the binning tests: uniform reference proportions, so only the
edges or categories matter."""

from __future__ import annotations

from modelops.drift.profile import FeatureProfile


def numeric(name: str, edges: tuple[float, ...]) -> FeatureProfile:
    bins = len(edges) + 2
    return FeatureProfile(
        name=name,
        kind="numeric",
        proportions=tuple([1.0 / (bins - 1)] * (bins - 1) + [0.0]),
        edges=edges,
        centers=tuple(float(i) for i in range(len(edges) + 1)),
        mean=0.0,
        std=1.0,
    )


def categorical(name: str, categories: tuple[str, ...]) -> FeatureProfile:
    return FeatureProfile(
        name=name,
        kind="categorical",
        proportions=tuple([1.0 / len(categories)] * len(categories) + [0.0, 0.0]),
        categories=categories,
    )
