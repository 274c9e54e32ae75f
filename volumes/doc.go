// Package volumes is a node's volume manager: it sets up every volume of a pod
// before its containers are created, keeps their content current while the pod
// runs, and tears them down once its containers are gone. It is the kubelet's
// volume manager and volume plugins for the volumes a node serves by itself,
// usable alone.
//
// Paths are the kubelet's: a volume lives in
// <root>/pods/<uid>/volumes/kubernetes.io~<type>/<name>, subPath binds in
// <root>/pods/<uid>/volume-subpaths/<volume>/<container>/<index>.
//
// Built-in plugins:
//
//   - emptyDir: a world-writable directory on disk; medium Memory is a tmpfs
//     sized by the smallest of sizeLimit, the pod's memory limit and the
//     node's allocatable memory;
//   - hostPath, with every type check and the kubelet's messages;
//   - configMap (on disk), secret, downwardAPI and projected (configMap,
//     secret, downwardAPI and, from an API server, serviceAccountToken
//     sources; on a tmpfs, so secrets never reach a disk), written by
//     package atomicwriter: items,
//     defaultMode and mode, optional, fsGroup ownership (setgid directories)
//     as upstream; mounted read-only in every container;
//   - image: an OCI image the runtime mounts read-only (CRI Mount.image).
//
// An embedder adds a type with a Plugin: three methods, Name, Handles and an
// idempotent SetUp; the manager unmounts and removes what the plugin left in
// its directory (a TearDowner undoes more).
//
// Keeping current: SetUp may run at every pod sync and writes only what
// changed. Run follows the object source: a changed configMap or secret is
// rewritten into the volumes that use it at once when the source reports
// changes (objects.Notifier), and every ResyncPeriod otherwise. Readers never
// see versions mixed (the ..data switch); subPath mounts pin what they bound.
//
// Restarts: SetUp finds tmpfs mounts and subPath binds already in place and
// keeps them, so an agent killed at any point mounts nothing twice; TearDown
// and PodDirs work from the directories alone, so the volumes of pods that
// vanished while the agent was down can be cleaned at start.
//
// subPath and subPathExpr are bound safely (the protections upstream added
// after CVE-2017-1002101 and CVE-2021-25741): resolved once, checked to stay in
// the volume, opened component by component without following symlinks, and
// bind-mounted from the opened descriptor, so a container that swaps a symlink
// in after the check reaches nothing outside its volume.
package volumes
