// Package podruntime runs pods on a CRI runtime: it is the node agent's
// counterpart of the kubelet's kuberuntime manager, smaller.
//
// SyncPod compares a pod's spec with its runtime status (a pleg.PodStatus) and
// acts: it creates the pod sandbox (again, with attempt+1, when it is gone or
// changed), pulls images per pull policy with a back-off, runs init containers
// strictly in order, starts sidecars (init containers with restartPolicy
// Always) in order, each started before the next init container, then the app
// containers; it restarts exited containers per the restart policy behind a
// crash-loop back-off (10 s doubling to 5 min, forgiven after 10 min of
// running), kills containers whose liveness or startup probe failed, and runs
// postStart hooks. KillPod stops a pod gracefully: preStop hooks within the
// grace period, then SIGTERM and SIGKILL at its end, app containers first and
// sidecars after them in reverse order, then the sandbox. RemovePod deletes what
// is left; GarbageCollect trims old exited containers.
//
// The manager writes the kubelet's labels and annotations on CRI objects
// (io.kubernetes.pod.*, io.kubernetes.container.*), so a restarted agent
// adopts running pods and can stop containers whose pod spec is gone.
//
// Paths are the kubelet's: pod directories <RootDir>/pods/<uid> (volumes in
// volumes/kubernetes.io~<type>/<name>, termination message files in
// containers/<name>/<random>), CRI logs in
// <PodLogsDir>/<namespace>_<name>_<uid>/<container>/<restartCount>.log.
//
// What the status generator needs from here: WaitingReason (why a container is
// not started: CrashLoopBackOff, ErrImagePull, ...) and TerminationMessage (the
// message an exited container left, read once and cached). Probe results come
// in through Options.Probes.
//
// With Options.Timeline, each pod's timeline (agent/timeline) gets what the
// syncs decided and why — create sandbox (no sandbox yet, sandbox not ready,
// network mode changed...), start and restart (first start, exited with code
// 1 under restartPolicy Always, killed because its liveness probe failed),
// kill (liveness or startup probe failed, spec changed, state unknown), kill
// pod — back-off waits with their delay and the last exit code, image pulls
// with bytes and time, hook results with their output and error, and every
// event Options.Recorder gets, as a user-facing entry: the manager records
// the entry and reports the event in one place. The contexts of its CRI
// calls carry the pod (timeline.WithPod) for an instrumented runtime to
// record them.
//
// Volumes are package volumes' (Options.Volumes): set up at every sync, before
// anything of the pod is created (FailedMount when one cannot be), subPaths
// bound safely, image volumes pulled per their pullPolicy and handed to the
// runtime as CRI Mount.image; RemovePod tears them down. ConfigMap and Secret
// references in env (valueFrom, envFrom) are read from Options.Objects; a
// missing one fails the container with CreateContainerConfigError and the
// kubelet's message unless optional.
package podruntime
