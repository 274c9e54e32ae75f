package agent

import (
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodekit-dev/nodekit/volumes"
)

// addVolumeStats fills each pod's VolumeStats with its disk-backed emptyDir
// volumes (bytes and inodes used under the pod directory, as the kubelet's du)
// and adds them to the pod's ephemeral storage, which the eviction manager ranks
// and checks against sizeLimit and ephemeral-storage limits. Memory-backed
// emptyDirs count as memory, not disk.
func (a *Agent) addVolumeStats(pods []statsapi.PodStats) {
	a.mu.RLock()
	specs := make(map[string]*v1.Pod, len(a.desired))
	for uid, p := range a.desired {
		specs[string(uid)] = p
	}
	a.mu.RUnlock()
	now := metav1.NewTime(a.clock.Now())
	for i := range pods {
		ps := &pods[i]
		pod := specs[ps.PodRef.UID]
		if pod == nil {
			continue
		}
		for _, vol := range pod.Spec.Volumes {
			if vol.EmptyDir == nil || vol.EmptyDir.Medium == v1.StorageMediumMemory {
				continue
			}
			dir := filepath.Join(a.cfg.RootDir, "pods", ps.PodRef.UID, "volumes", volumes.EmptyDirPlugin, vol.Name)
			bytes, inodes, ok := diskUsage(dir)
			if !ok {
				continue
			}
			ps.VolumeStats = append(ps.VolumeStats, statsapi.VolumeStats{
				Name:    vol.Name,
				FsStats: statsapi.FsStats{Time: now, UsedBytes: &bytes, InodesUsed: &inodes},
			})
			if ps.EphemeralStorage == nil {
				ps.EphemeralStorage = &statsapi.FsStats{Time: now}
			}
			used := bytes
			if ps.EphemeralStorage.UsedBytes != nil {
				used += *ps.EphemeralStorage.UsedBytes
			}
			ps.EphemeralStorage.UsedBytes = &used
			in := inodes
			if ps.EphemeralStorage.InodesUsed != nil {
				in += *ps.EphemeralStorage.InodesUsed
			}
			ps.EphemeralStorage.InodesUsed = &in
		}
	}
}
