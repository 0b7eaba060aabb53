"""Reference profiles and drift statistics: pure numpy, no I/O.

The trainer builds a :class:`Profile` from training data (``build_profile``) and stores
``profile.json``; the model server counts every request into the profile's bins
(``Profile.bin_counts``); the operator and ``modelops drift report`` turn a window of counts into
a :class:`DriftReport` (``compute_drift``). Statistics live in ``modelops.drift.statistics``.
"""

from modelops.drift.evaluate import (
    DEFAULT_THRESHOLDS,
    METRICS,
    DriftReport,
    FeatureDrift,
    InsufficientSamplesError,
    compute_drift,
)
from modelops.drift.profile import (
    FeatureProfile,
    Profile,
    ProfileError,
    build_output_profile,
    build_profile,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METRICS",
    "DriftReport",
    "FeatureDrift",
    "FeatureProfile",
    "InsufficientSamplesError",
    "Profile",
    "ProfileError",
    "build_output_profile",
    "build_profile",
    "compute_drift",
]
