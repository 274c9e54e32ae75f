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
# How to look further, with the sample pods' real names.
kb="sudo ${bin#"$PWD"/}/nodekit-kubelet"
rd=""
[ "$root" = /var/lib/nodekit-kubelet ] || rd=" --root-dir $root"
hints() {
	local names web crash
	names=$("$bin/nodekit-kubelet" get pods --root-dir "$root" -o name 2>/dev/null | sed 's#^pod/##')
	web=$(grep -m1 '^web-' <<<"$names" || echo web-NODE)
	crash=$(grep -m1 '^crashloop-' <<<"$names" || echo crashloop-NODE)
	local cmds=("$kb describe pod $crash$rd" "$kb logs $crash --previous$rd" "$kb logs -f $web$rd"
		"$kb exec -it $web$rd -- sh" "$kb top pods$rd")
	local notes=("containers, last state, exit code, events, timeline" "what its last instance wrote"
		"follow the web server's log" "a shell in the web server's container" "CPU and memory of each pod")
	local width=0 c i
	for c in "${cmds[@]}"; do ((${#c} > width)) && width=${#c}; done
	echo "Look further (in another terminal):"
	for i in "${!cmds[@]}"; do
		printf '  %-*s  # %s\n' "$width" "${cmds[$i]}" "${notes[$i]}"
	done
}
if [ -t 1 ]; then
	# Refresh the table until Ctrl-C.
	while :; do
		table=$("$bin/nodekit-kubelet" get pods --root-dir "$root" 2>&1 || true)
		printf '\033[H\033[2J'
		echo "nodekit-kubelet pods at $(date +%T) (Ctrl-C stops every pod and the kubelet)"
		echo
		echo "$table"
		echo
		hints
		sleep 2
	done
else
	# No terminal (CI, a pipe): show the table a few times, then stop.
	for _ in 1 2 3; do
		sleep 10
		"$bin/nodekit-kubelet" get pods --root-dir "$root"; echo
	done
	hints
fi
