"""ModelOps: serve scikit-learn models on Kubernetes, watch their input drift, retrain them."""

__version__ = "0.1.0"

API_GROUP = "modelops.dev"
API_VERSION = "v1alpha1"


def __getattr__(name: str) -> object:
    """``modelops.package``: imported on first use, so ``import modelops`` stays light."""
    if name == "package":
        from modelops.training.package import package

        return package
    raise AttributeError(f"module 'modelops' has no attribute {name!r}")
