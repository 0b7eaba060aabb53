"""The trainer: retrain a champion's recipe on fresh data and publish a challenger.

``modelops train`` (see :mod:`modelops.training.cli`) reads fresh CSV data and the current
champion model, gates the data on quality, fits the same allow-listed recipe with a fixed seed,
scores challenger and champion on one seeded holdout, and writes the new model directory
atomically. ``modelops example`` writes a first model and (drifted) demo data from
scikit-learn's bundled datasets.

Modules, one job each: :mod:`.errors` (failure kinds and exit codes), :mod:`.data` (CSV to
numpy), :mod:`.quality` (the data-quality gate), :mod:`.estimators` (the allow-list),
:mod:`.evaluate` (holdout split and metrics), :mod:`.publish` (atomic, idempotent write),
:mod:`.trainer` (the run), :mod:`.examples` (bundled datasets).

Importing this package is cheap; scikit-learn is imported by the modules that need it.
"""
