// Package imagegc is the kubelet's garbage collection of images and of dead
// containers, as two policies over the CRI that can be used alone.
//
// # Images
//
// An ImageGC (New, Options) tracks, for every image the runtime lists, when it
// was first detected and when it was last seen in use by a container of any
// state (an exited container keeps its image in use until it is removed
// itself). GarbageCollect removes the images unused for longer than MaxAge
// (when set) and, if the image filesystem's usage is at or above the high
// threshold, frees down to the low threshold, least recently used first.
// Images in use, pinned by the runtime (CRI Image.Pinned) or first detected
// less than MinAge ago are never removed; when not enough can be freed the
// error is a *FreeDiskSpaceError and the Recorder gets FreeDiskSpaceFailed.
// DeleteUnusedImages removes every image that may go, whatever the usage,
// for eviction. Run collects every 5 minutes, starting at once; images found
// then count as first detected at that moment, so nothing is removed within
// MinAge of the start.
//
// Usage is that of the whole filesystem holding the images, from an FsStats
// (capacity and available bytes, the kubelet's cAdvisor ImagesFsInfo); by
// default, statfs(2) of the mountpoint the runtime's ImageFsInfo reports.
// OptionsFromConfig reads the policy from a KubeletConfiguration.
//
// # Containers
//
// A ContainerGC (NewContainerGC, ContainerOptions) removes containers that are
// not running and are at least MinAge old: all of those of deleted pods, and
// otherwise all but the newest MaxPerPodContainer (default 1) of each
// container of a pod, then, if more than MaxContainers (default: no limit)
// remain on the node, an equal share per container of a pod and then the
// oldest. Their log files, rotations included, go with them. Sandboxes that
// are not ready and hold no container are removed, but the newest of a pod
// that still exists. Log directories of deleted pods under PodLogsDir are
// removed. Whether a pod is deleted is the agent's answer (PodDeleted), asked
// only once all pod sources are ready. Run collects every minute;
// DeleteUnusedContainers is the on-demand pass eviction runs, which also
// removes what terminated (not yet deleted) pods left.
//
// Time comes from an injected clock (k8s.io/utils/clock), so tests drive the
// collectors with a fake clock and never sleep.
package imagegc
