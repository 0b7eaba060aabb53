#!/usr/bin/env bash
# Build the real control plane for the tests into a cache, once:
# kube-apiserver, kube-controller-manager, etcd and a kubectl of the same release, at the
# versions pinned in go.mod.
# The cache is $MODELOPS_K8S_BIN, else ~/.cache/modelops/k8s/<version>/.
# A cold build takes ~7-10 min and ~3 GB of memory on 2 cores; a warm cache returns at once.
set -euo pipefail
cd "$(dirname "$0")"

KUBE_VERSION=v1.37.2
BIN_DIR=${MODELOPS_K8S_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/modelops/k8s/$KUBE_VERSION}
TOOLS=(kube-apiserver kube-controller-manager etcd kubectl)

missing=()
for tool in "${TOOLS[@]}"; do
    [[ -x "$BIN_DIR/$tool" ]] || missing+=("$tool")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "Kubernetes $KUBE_VERSION binaries are cached in $BIN_DIR"
    exit 0
fi

command -v go >/dev/null || { echo "make k8s-bin needs Go (1.26 or newer) on the PATH" >&2; exit 1; }
mkdir -p "$BIN_DIR"
read -r major minor _ <<<"$(echo "${KUBE_VERSION#v}" | tr . ' ')"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    stamp+=" -X $pkg.gitTreeState=clean"
done
declare -A package=(
    [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
    [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
    [etcd]=go.etcd.io/etcd/server/v3
    [kubectl]=k8s.io/kubernetes/cmd/kubectl
)
for tool in "${missing[@]}"; do
    echo "Building $tool ($KUBE_VERSION) into $BIN_DIR"
    CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w$stamp" \
        -o "$BIN_DIR/$tool.partial" "${package[$tool]}"
    mv "$BIN_DIR/$tool.partial" "$BIN_DIR/$tool"
done
echo "Kubernetes $KUBE_VERSION binaries built into $BIN_DIR"
