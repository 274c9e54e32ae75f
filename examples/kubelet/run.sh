#!/usr/bin/env bash
# The main job (`sudo make run`): nodekit-kubelet with its embedded runtime runs the
# sample static pods of examples/pods; the pods table refreshes until Ctrl-C, which
# stops every pod and the kubelet cleanly.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/bin
root=${NODEKIT_ROOT_DIR:-/var/lib/nodekit-kubelet}
log=${NODEKIT_LOG:-/tmp/nodekit-kubelet.log}

[ "$(id -u)" = 0 ] || { echo "run as root: sudo make run" >&2; exit 1; }

echo "== importing the sample images into the embedded runtime ($root)"
"$bin/nodekit-kubelet" import --root-dir "$root" "$top"/_output/images/*.tar

# Ports other than the kubelet's defaults, so a real kubelet on this machine
# does not get in the way.
"$bin/nodekit-kubelet" --root-dir "$root" --pod-manifest-path "$top/examples/pods" \
	--object-manifest-path "$top/examples/objects" \
	--port 10350 --healthz-port 10348 --stop-pods-on-exit >"$log" 2>&1 &
kubelet=$!
stop() {
	trap - EXIT INT TERM
	echo; echo "== stopping every pod and nodekit-kubelet (graceful; up to a minute)"
	kill -TERM "$kubelet" 2>/dev/null || true
	wait "$kubelet" 2>/dev/null || true
	echo "stopped; the kubelet's log is $log"
	left=$(grep -c "$root\|/run/nodekit-kubelet" /proc/self/mountinfo || true)
	echo "mounts left behind: $left"
}
trap stop EXIT
trap 'exit 0' INT TERM

echo "== nodekit-kubelet started (pid $kubelet, log $log); waiting for its API"
for _ in $(seq 100); do
	"$bin/nodekit-kubelet" get pods --root-dir "$root" >/dev/null 2>&1 && break
	kill -0 "$kubelet" 2>/dev/null || { echo "nodekit-kubelet exited:" >&2; tail -20 "$log" >&2; exit 1; }
	sleep 0.2
done
if [ -t 1 ]; then
	"$bin/nodekit-kubelet" get pods --root-dir "$root" --watch
else
	# No terminal (CI, a pipe): show the table a few times, then stop.
	for _ in 1 2 3; do
		sleep 10
		"$bin/nodekit-kubelet" get pods --root-dir "$root"; echo
	done
fi
