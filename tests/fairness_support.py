"""A constructed, seeded credit-approval data set for the governed-promotion tests.

Applicants have two features that decide approval (``income``, ``debt``), a ``postcode_score``
that is a proxy of ``sex`` (it differs by group, and says nothing about approval in fair data),
the sensitive columns ``sex`` and ``region`` (never model features) and an ``applied_at`` time.
In *biased* data the past decisions held group ``F`` back: their approvals are cut by a fixed
offset, so a model retrained on them learns the proxy and approves ``F`` far less often
(demographic parity difference near 0.4); in fair data the same model's difference stays small.
Group names are unusual words, so a test can tell when one leaks into a log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

FEATURES = ["income", "debt", "postcode_score"]
SENSITIVE = ["sex", "region"]
TARGET = "approved"
TIME = "applied_at"
#: Values of the sensitive columns; none of them appears in anything the trainer logs.
SEXES = ("Fzorbl", "Mqwix")
REGIONS = ("Northvale", "Southmere", "Eastwick")
START = datetime(2026, 1, 1, tzinfo=UTC)


def applicants(rows: int, *, seed: int, biased: bool = False, shift: float = 0.0) -> pd.DataFrame:
    """``rows`` applicants; ``shift`` moves ``income`` (drift), ``biased`` holds group F back."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(SEXES, size=rows)
    region = rng.choice(REGIONS, size=rows)
    income = rng.normal(shift, 1.0, rows)
    debt = rng.normal(0.0, 1.0, rows)
    proxy = np.where(sex == SEXES[0], 1.0, -1.0) + rng.normal(0.0, 0.5, rows)
    merit = income - 0.5 * debt + rng.normal(0.0, 0.3, rows)
    if biased:
        merit = merit - 2.5 * (sex == SEXES[0])
    approved = (merit > shift).astype(int)
    times = [START + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 90, rows)]
    return pd.DataFrame(
        {
            "income": income,
            "debt": debt,
            "postcode_score": proxy,
            "sex": sex,
            "region": region,
            TIME: [t.isoformat().replace("+00:00", "Z") for t in times],
            TARGET: approved,
        }
    )


def fit_champion(reference: pd.DataFrame, features: list[str] | None = None) -> object:
    """The first model, a scaled logistic regression fitted on the DataFrame's ``features``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    columns = features or FEATURES
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(
        reference[columns], reference[TARGET]
    )
