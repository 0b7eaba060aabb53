"""The trainer: refit a champion on fresh data and publish a challenger; package a user's model.

``modelops train`` (see :mod:`modelops.training.cli`) reads fresh CSV data and the current
champion model, gates the data on quality, refits a clone of the champion's own pipeline (or an
allow-listed recipe, with ``--estimator``) with a fixed seed, scores challenger and champion on
one seeded holdout, and writes the new model directory atomically. ``modelops package`` (and
``modelops.package``) turns a user's fitted pipeline and its reference data into a model
directory. ``modelops example`` writes a first model and (drifted) demo data from scikit-learn's
bundled datasets.

Modules, one job each: :mod:`.errors` (failure kinds and exit codes), :mod:`.data` (CSV to
numpy), :mod:`.quality` (the data-quality gate), :mod:`.estimators` (the allow-list),
:mod:`.evaluate` (holdout split and metrics), :mod:`.publish` (atomic, idempotent write),
:mod:`.trainer` (the run), :mod:`.package` (bring your own model), :mod:`.examples` (bundled
datasets).

Importing this package is cheap; scikit-learn is imported by the modules that need it.
"""
