#!/usr/bin/env bash
# Builds a real Kubernetes control plane for the repository's tests
# (internal/controlplane): kube-apiserver, kube-controller-manager,
# kube-scheduler and kubectl from k8s.io/kubernetes, and etcd from
# go.etcd.io/etcd/server/v3, all from the Go module proxy, into DIR/bin.
#
#   examples/controlplane/build.sh               build what is missing or stale (`make controlplane`)
#   examples/controlplane/build.sh --print-dir   print DIR and exit
#   examples/controlplane/build.sh kubelet       also the upstream kubelet, built the same way
#                                                (`make kubelet-anchor`: bench/cluster's anchor)
#
# DIR is $NODEKIT_CONTROLPLANE_DIR, by default /var/cache/nodekit/controlplane/<version>:
# outside the repository, so that `make clean` and fresh work trees keep it. Root is not
# needed when DIR is writable (set NODEKIT_CONTROLPLANE_DIR to a directory of yours).
#
# The Kubernetes version is the repository's k8s.io/api version read from go.mod,
# v0.X.Y → v1.X.Y, so the control plane matches the client libraries the agent uses.
#
# k8s.io/kubernetes cannot be built with `go install pkg@version`: its go.mod replaces
# every staging module (k8s.io/api, k8s.io/apiserver, …) with a directory of its own
# tree. The script writes a throwaway module in DIR/src/kubernetes that requires
# k8s.io/kubernetes at that version and replaces each staging module named in
# upstream's own go.mod (found with `go mod download -json`) by its published
# v0.X.Y, adds the four commands as tools (`go get -tool`) and builds them with the
# version stamped as upstream's build does (-X on k8s.io/component-base/version and
# k8s.io/client-go/pkg/version; without it /version says v0.0.0-master and kubectl
# complains). etcd is built the same way from a module of its own, DIR/src/etcd, at
# ETCD_RELEASE below (3.6: Debian's etcd 3.4 lacks what the apiserver's watch-list needs).
#
# Idempotent: when every binary is present and answers --version with the expected
# version, the script does nothing (a second run takes about a second). A cold build
# took ~17 minutes on 2 cores shared with other work (~15 for the four Kubernetes
# commands, ~1.5 for etcd) and up to ~2.7 GB of memory; with a warm Go build cache it
# takes ~20 s and gives the same binaries. The default GOCACHE and GOMODCACHE are used.
# Runs are serialised with flock(1) on DIR/.lock.
#
# The kubelet is opt-in (the `kubelet` argument): only bench/cluster needs it, and it
# would add minutes to a cold `make test`. It is added to the throwaway module as one
# more tool (`go get -tool`, which changes no module version: its packages are in
# k8s.io/kubernetes already) and stamped like the others; a cold build of it alone took
# ~1.2 minutes with the apiserver's packages warm in the build cache (2 cores).
set -euo pipefail

ETCD_RELEASE=v3.6.17

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
# Not inherited: the repository's or the caller's module settings must not leak into
# the throwaway modules. etcd reads every ETCD_* variable as a flag (etcd --version too).
export GOFLAGS= GOWORK=off CGO_ENABLED=0
for v in $(compgen -e | grep '^ETCD_' || true); do unset "$v"; done

die() { echo "controlplane: $*" >&2; exit 1; }

# go.mod's own requirement (`go mod edit -json` reads the file only: no module graph).
api_version=$(cd "$repo" && "$GO" mod edit -json |
	awk '/"Require"/ { r = 1 } r && /"Path": "k8s\.io\/api"/ { getline; gsub(/.*"Version": "|".*/, ""); print; exit }') ||
	die "cannot read the k8s.io/api version from $repo/go.mod"
[[ $api_version =~ ^v0\.([0-9]+)\.([0-9]+)$ ]] ||
	die "k8s.io/api $api_version in go.mod is not a release v0.X.Y"
kube_minor=${BASH_REMATCH[1]}
kube_version=v1.${kube_minor}.${BASH_REMATCH[2]}
staging_version=$api_version

dir=${NODEKIT_CONTROLPLANE_DIR:-/var/cache/nodekit/controlplane/$kube_version}
if [[ ${1:-} == --print-dir ]]; then
	echo "$dir"
	exit 0
fi
with_kubelet=0
case $# in
0) ;;
1) [[ $1 == kubelet ]] || die "usage: $0 [--print-dir | kubelet]"
	with_kubelet=1 ;;
*) die "usage: $0 [--print-dir | kubelet]" ;;
esac

bin=$dir/bin
mkdir -p "$bin" "$dir/src" 2>/dev/null ||
	die "cannot create $dir (the default needs root; set NODEKIT_CONTROLPLANE_DIR to a writable directory)"
exec 9>"$dir/.lock"
flock 9

# current NAME: whether bin/NAME exists and reports the expected version.
current() {
	local out
	case $1 in
	kubectl) out=$("$bin/kubectl" version --client 2>/dev/null) || return 1
		grep -qx "Client Version: $kube_version" <<<"$out" ;;
	etcd) out=$("$bin/etcd" --version 2>/dev/null) || return 1
		grep -qx "etcd Version: ${ETCD_RELEASE#v}" <<<"$out" ;;
	*) out=$("$bin/$1" --version 2>/dev/null) || return 1
		[[ $out == "Kubernetes $kube_version" ]] ;;
	esac
}

kube_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
[[ $with_kubelet -eq 0 ]] || kube_cmds+=(kubelet)
stale=()
for c in "${kube_cmds[@]}"; do current "$c" || stale+=("$c"); done
etcd_stale=0
current etcd || etcd_stale=1
if [[ ${#stale[@]} -eq 0 && $etcd_stale -eq 0 ]]; then
	echo "controlplane: $bin is up to date (Kubernetes $kube_version, etcd $ETCD_RELEASE)"
	exit 0
fi

# Binaries are built into a staging directory and moved into place, so that an
# interrupted build never leaves a half-written binary that a test would pick up.
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# mod_info MODULE@VERSION FIELD: a field of `go mod download -json`.
mod_info() {
	"$GO" mod download -json "$1" | sed -n "s/^\t\"$2\": \"\(.*\)\",\{0,1\}\$/\1/p"
}

if [[ ${#stale[@]} -gt 0 ]]; then
	echo "controlplane: building ${stale[*]} (Kubernetes $kube_version) into $bin"
	upstream_mod=$(mod_info "k8s.io/kubernetes@$kube_version" GoMod)
	[[ -f $upstream_mod ]] || die "cannot download k8s.io/kubernetes@$kube_version"
	info=$(mod_info "k8s.io/kubernetes@$kube_version" Info)
	# The release's commit time, so that a rebuild gives the same binaries.
	build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info")
	[[ -n $build_date ]] || die "no release time in $info"
	# Upstream's staging modules: `k8s.io/X => ./staging/src/k8s.io/X`, less the samples.
	mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/src/.*#\1#p' "$upstream_mod" |
		grep -v '^k8s\.io/sample-')
	[[ ${#staging[@]} -gt 10 ]] || die "found only ${#staging[@]} staging modules in $upstream_mod"
	go_directive=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream_mod")

	src=$dir/src/kubernetes
	mkdir -p "$src"
	{
		echo "// Generated by examples/controlplane/build.sh of github.com/nodekit-dev/nodekit: do not edit."
		echo "module nodekit.local/controlplane"
		echo
		echo "go $go_directive"
		echo
		# Upstream's GODEBUG defaults (a main module's godebug lines set the binaries').
		grep '^godebug ' "$upstream_mod" || true
		echo
		echo "require k8s.io/kubernetes $kube_version"
		echo
		echo "replace ("
		for m in "${staging[@]}"; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"; done
		echo ")"
	} >"$src/go.mod.new"
	# Keep go.sum (and skip the resolution) when the module is the same as last time.
	if ! cmp -s "$src/go.mod.new" "$src/go.mod.gen" 2>/dev/null; then
		cp "$src/go.mod.new" "$src/go.mod"
		rm -f "$src/go.sum"
		pkgs=()
		for c in "${kube_cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c@$kube_version"); done
		(cd "$src" && "$GO" get -tool "${pkgs[@]}") || die "go get -tool in $src failed"
		mv "$src/go.mod.new" "$src/go.mod.gen"
	else
		rm -f "$src/go.mod.new"
	fi
	# A module generated before the kubelet was asked for lacks it as a tool.
	for c in "${stale[@]}"; do
		(cd "$src" && "$GO" mod edit -json | grep -q "\"Path\": \"k8s.io/kubernetes/cmd/$c\"") && continue
		(cd "$src" && "$GO" get -tool "k8s.io/kubernetes/cmd/$c@$kube_version") || die "go get -tool $c in $src failed"
	done

	ldflags="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $p.gitVersion=$kube_version -X $p.gitMajor=1 -X $p.gitMinor=$kube_minor"
		ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$build_date"
	done
	pkgs=()
	for c in "${stale[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
	(cd "$src" && "$GO" build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}") ||
		die "building ${stale[*]} failed"
	for c in "${stale[@]}"; do mv -f "$tmp/$c" "$bin/$c"; done
fi

if [[ $etcd_stale -eq 1 ]]; then
	echo "controlplane: building etcd $ETCD_RELEASE into $bin"
	src=$dir/src/etcd
	mkdir -p "$src"
	printf '// Generated by examples/controlplane/build.sh of github.com/nodekit-dev/nodekit: do not edit.\nmodule nodekit.local/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
		"$ETCD_RELEASE" >"$src/go.mod.new"
	if ! cmp -s "$src/go.mod.new" "$src/go.mod.gen" 2>/dev/null; then
		cp "$src/go.mod.new" "$src/go.mod"
		rm -f "$src/go.sum"
		(cd "$src" && "$GO" get -tool "go.etcd.io/etcd/server/v3@$ETCD_RELEASE") || die "go get -tool in $src failed"
		mv "$src/go.mod.new" "$src/go.mod.gen"
	else
		rm -f "$src/go.mod.new"
	fi
	(cd "$src" && "$GO" build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_RELEASE" \
		-o "$tmp/etcd" go.etcd.io/etcd/server/v3) || die "building etcd failed"
	mv -f "$tmp/etcd" "$bin/etcd"
fi

for c in "${kube_cmds[@]}" etcd; do current "$c" || die "$bin/$c does not report the expected version after the build"; done
echo "controlplane: $bin is up to date (Kubernetes $kube_version, etcd $ETCD_RELEASE)"
