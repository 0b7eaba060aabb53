"""ModelOps: serve scikit-learn models on Kubernetes, watch their input drift, retrain them."""

__version__ = "0.1.0"

API_GROUP = "modelops.dev"
API_VERSION = "v1alpha1"
