"""A real Kubernetes control plane for the tests: etcd, kube-apiserver and
kube-controller-manager built by ``make k8s-bin``, a process kubelet that plays the node, a
fault proxy in front of the API server, and a small client.

Nothing here is the product: it is how the tests reach the real thing.
"""
