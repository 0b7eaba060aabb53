#!/usr/bin/env bash
# Build the S3 server for the tests into a cache, once: SeaweedFS's `weed` (Apache-2.0) at the
# version pinned in go.mod, from the Go module proxy like the Kubernetes binaries (hack/k8s).
# The binary is $MODELOPS_SEAWEEDFS_BIN, else ~/.cache/modelops/seaweedfs/<version>/weed.
# A cold build takes ~5 min on 2 cores (164 MB binary); a warm cache returns at once.
set -euo pipefail
cd "$(dirname "$0")"

WEED_VERSION=$(awk '$1 == "github.com/seaweedfs/seaweedfs" {print $2}' go.mod)
BIN=${MODELOPS_SEAWEEDFS_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/modelops/seaweedfs/$WEED_VERSION/weed}

if [[ -x "$BIN" ]]; then
    echo "SeaweedFS $WEED_VERSION is cached at $BIN"
    exit 0
fi
command -v go >/dev/null || { echo "make s3-bin needs Go (1.26.6 or newer) on the PATH" >&2; exit 1; }
mkdir -p "$(dirname "$BIN")"
echo "Building SeaweedFS $WEED_VERSION into $BIN"
CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags '-s -w' -o "$BIN.partial" \
    github.com/seaweedfs/seaweedfs/weed
mv "$BIN.partial" "$BIN"
echo "SeaweedFS $WEED_VERSION built into $BIN"
