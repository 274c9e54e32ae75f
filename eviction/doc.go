// Package eviction is the kubelet's eviction manager as a library: it keeps a
// node stable by watching its memory, disks and process IDs, and evicting pods
// when one runs short.
//
// ParseConfig reads the thresholds from a kubelet configuration (evictionHard,
// evictionSoft, evictionSoftGracePeriod, evictionMinimumReclaim, ...). A Manager
// (New) makes a pass every 10 s, or at once after Notify (which a
// MemoryNotifier calls when the kernel sees memory run out): it observes the
// signals in the node's stats Summary, sets the MemoryPressure, DiskPressure and
// PIDPressure conditions (NodeConditions), evicts the pods that exceed their
// local storage limits and, when a threshold is met past its grace period,
// first frees disk through container and image garbage collection, then
// evicts one pod ranked as the kubelet ranks them (usage above requests,
// priority, usage). Admit tells whether a new pod may start under the current
// pressure. Critical pods (by default static, mirror and system-critical pods,
// see IsCriticalPod) are never evicted.
//
// The manager only decides: the stats, the pods, and the evictions themselves
// come through the SummaryProvider, PodLister and PodKiller interfaces.
package eviction
