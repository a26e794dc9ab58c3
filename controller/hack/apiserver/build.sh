#!/bin/sh
# Builds etcd and kube-apiserver from their Go modules into a cache
# directory and prints that directory (KUBEBUILDER_ASSETS for envtest) on
# stdout; progress goes to stderr. No binaries are downloaded: the Go module
# proxy is the only source, so this works wherever the project builds.
#
# The binaries are kept in ${XDG_CACHE_HOME:-~/.cache}/sluice/apiserver-<kubernetes version>/
# (SLUICE_APISERVER_DIR overrides it) with a stamp of the files that made
# them: a rerun with the same files returns at once, a change of a go.mod,
# a go.sum or this script builds again. A cold build takes minutes
# (kube-apiserver is most of it).
#
# Each binary has a module of its own (etcd/, kube-apiserver/) so that each
# is built with the dependency versions of its own release, as upstream
# builds it, not with the newest of the two sets.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
GO=${GO:-go}

kube=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$here/kube-apiserver/go.mod")
etcd=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2 }' "$here/etcd/go.mod")
if [ -z "$kube" ] || [ -z "$etcd" ]; then
	echo "build.sh: no k8s.io/kubernetes or etcd server version in the go.mod files" >&2
	exit 1
fi
out=${SLUICE_APISERVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/apiserver-$kube}

stamp=$(cd "$here" && cat build.sh etcd/go.mod etcd/go.sum kube-apiserver/go.mod kube-apiserver/go.sum | sha256sum | cut -d' ' -f1)
if [ -x "$out/etcd" ] && [ -x "$out/kube-apiserver" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "etcd $etcd and kube-apiserver $kube are built in $out" >&2
	echo "$out"
	exit 0
fi

mkdir -p "$out"
tmp=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# Static binaries like the released ones (CGO_ENABLED=0), without the
# repository's VCS stamp, which is not theirs.
start=$(date +%s)
echo "building etcd $etcd into $out ..." >&2
(cd "$here/etcd" && CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -ldflags '-s -w' \
	-o "$tmp/etcd" go.etcd.io/etcd/server/v3)

# The version variables are what the release build sets (hack/lib/version.sh
# in kubernetes): without them the server reports v0.0.0-master.
minor=$(echo "$kube" | cut -d. -f2)
pkg=k8s.io/component-base/version
echo "building kube-apiserver $kube into $out (several minutes when nothing is cached) ..." >&2
(cd "$here/kube-apiserver" && CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false \
	-ldflags "-s -w -X $pkg.gitVersion=$kube -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
	-o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)

mv "$tmp/etcd" "$tmp/kube-apiserver" "$out/"
echo "$stamp" >"$out/.stamp"
echo "built in $(($(date +%s) - start))s" >&2
echo "$out"
