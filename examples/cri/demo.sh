#!/usr/bin/env bash
# The sample run (`sudo make run`): start nodekit-cri, import the sample images, run
# the web pod through crictl, show it running, and clean everything up on Ctrl-C.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/bin
sock=${NODEKIT_SOCKET:-/run/nodekit/cri.sock}
log=${NODEKIT_LOG:-/tmp/nodekit-cri.log}
work=$(mktemp -d /tmp/nodekit-demo.XXXXXX)
cat >"$work/crictl.yaml" <<EOC
runtime-endpoint: unix://$sock
image-endpoint: unix://$sock
timeout: 60
EOC
crictl=(crictl_quiet --config "$work/crictl.yaml")
# crictl warns about things a standalone runtime does not need (a cgroup parent);
# keep its real errors.
crictl_quiet() { "$bin/crictl" "$@" 2> >(grep -v 'level=warning' >&2); }

[ "$(id -u)" = 0 ] || { echo "run as root: sudo make run" >&2; exit 1; }

"$bin/nodekit-cri" --listen "$sock" >"$log" 2>&1 &
daemon=$!
pod=""
cleanup() {
	trap - EXIT INT TERM
	echo; echo "== cleaning up"
	if [ -n "$pod" ]; then
		"${crictl[@]}" stopp "$pod" >/dev/null && "${crictl[@]}" rmp "$pod" >/dev/null && echo "removed pod $pod"
	fi
	kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
	rm -rf "$work"
	echo "nodekit-cri stopped (its log: $log)"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# Wait for the socket to answer, with a deadline.
for _ in $(seq 100); do
	"${crictl[@]}" version >/dev/null 2>&1 && break
	kill -0 "$daemon" 2>/dev/null || { echo "nodekit-cri exited; see $log" >&2; cat "$log" >&2; exit 1; }
	sleep 0.1
done
echo "== nodekit-cri is serving on $sock"
"${crictl[@]}" version

echo; echo "== importing the sample images"
"$bin/nodekit-cri" import --listen "$sock" "$top"/_output/images/*.tar
"${crictl[@]}" images

echo; echo "== running the web pod"
pod=$("${crictl[@]}" runp "$top/examples/cri/web-pod.json")
ctr=$("${crictl[@]}" create "$pod" "$top/examples/cri/web-container.json" "$top/examples/cri/web-pod.json")
"${crictl[@]}" start "$ctr" >/dev/null
echo; "${crictl[@]}" pods
echo; "${crictl[@]}" ps

echo; echo "== GET /healthz from inside the pod"
for _ in $(seq 50); do
	"${crictl[@]}" exec --sync "$ctr" wget -qO- http://127.0.0.1:8080/healthz 2>/dev/null && break
	sleep 0.1
done
"${crictl[@]}" exec --sync "$ctr" wget -qO- http://127.0.0.1:8080/ | head -5

echo; echo "== the pod's log (crictl logs)"
"${crictl[@]}" logs "$ctr"

echo; echo "The web pod is running. Press Ctrl-C to stop it and nodekit-cri."
if [ -t 0 ]; then
	while kill -0 "$daemon" 2>/dev/null; do sleep 1; done
fi
