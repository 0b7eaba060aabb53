"""The model server: Open Inference Protocol v2 over HTTP for scikit-learn models.

Modules, one job each: ``loader`` (safe loading of model directories), ``protocol`` (V2 documents
to and from numpy, pure), ``dataplane`` (predictions and the one place where errors become HTTP
statuses), ``metrics`` (Prometheus, own registry), ``counts`` (the bin counts as JSON for the
operator, written and read, pure), ``app`` (the raw ASGI app), ``server`` (start-up, uvicorn,
shutdown), ``logs`` (JSON logging), ``cli`` (``modelops serve``).
"""
