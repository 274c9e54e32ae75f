#!/bin/bash
# check-ctr-import.sh [ARCHIVE...]
#
# Checks that containerd imports nodekit's sample image archives under the
# right names: starts a private containerd (its own root, state, socket and a
# minimal config; the CRI plugin disabled), runs `ctr images import` for each
# archive in the k8s.io namespace, lists the images, and checks that every
# archive's io.containerd.image.name shows up with the manifest digest of its
# index.json. Then stops that containerd by PID, unmounts whatever it left
# under its root, and removes its directories.
#
# Needs root, containerd and ctr (Debian: containerd). Default archives:
# _output/images/{busybox,web,pause}.tar (run from the module root after
# `make images`). Exits non-zero on any failure.
set -euo pipefail

if [ "$#" -eq 0 ]; then
	set -- _output/images/busybox.tar _output/images/web.tar _output/images/pause.tar
fi
for a in "$@"; do
	[ -f "$a" ] || { echo "check-ctr-import: $a: no such archive (run make images)" >&2; exit 1; }
done
CONTAINERD=${CONTAINERD:-containerd}
CTR=${CTR:-ctr}
command -v "$CONTAINERD" >/dev/null || { echo "check-ctr-import: containerd not found (apt-get install containerd)" >&2; exit 1; }
command -v "$CTR" >/dev/null || { echo "check-ctr-import: ctr not found (apt-get install containerd)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/nodekit-ctr-check.XXXXXX)
sock=$tmp/containerd.sock
pid=

cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	# Unmount anything containerd left under its directories, deepest first.
	awk -v t="$tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/config.toml" <<'EOF'
version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]
EOF

"$CONTAINERD" --config "$tmp/config.toml" --root "$tmp/root" --state "$tmp/state" \
	--address "$sock" --log-level warn >"$tmp/containerd.log" 2>&1 &
pid=$!

ready=
for _ in $(seq 100); do
	if "$CTR" -a "$sock" version >/dev/null 2>&1; then ready=1; break; fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$ready" ]; then
	echo "check-ctr-import: containerd did not come up; its log:" >&2
	cat "$tmp/containerd.log" >&2
	exit 1
fi

for a in "$@"; do
	echo "+ ctr -n k8s.io images import $a"
	"$CTR" -a "$sock" -n k8s.io images import "$a"
done
echo "+ ctr -n k8s.io images ls"
"$CTR" -a "$sock" -n k8s.io images ls | tee "$tmp/ls.txt"

fail=0
for a in "$@"; do
	index=$(tar -xOf "$a" index.json)
	name=$(printf '%s' "$index" | sed -n 's/.*"io.containerd.image.name":"\([^"]*\)".*/\1/p')
	digest=$(printf '%s' "$index" | sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p')
	if [ -z "$name" ] || [ -z "$digest" ]; then
		echo "FAIL $a: no image name or manifest digest in index.json" >&2
		fail=1
		continue
	fi
	if awk -v n="$name" -v d="$digest" '$1 == n && $3 == d { found = 1 } END { exit !found }' "$tmp/ls.txt"; then
		echo "ok   $a -> $name $digest"
	else
		echo "FAIL $a: $name with digest $digest not listed by ctr images ls" >&2
		fail=1
	fi
done
exit "$fail"
