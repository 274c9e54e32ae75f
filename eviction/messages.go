package eviction

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// The kubelet's texts, which users and tools match on.
const (
	nodeLowMessageFmt                   = "The node was low on resource: %v. "
	nodeConditionMessageFmt             = "The node had condition: %v. "
	thresholdMetMessageFmt              = "Threshold quantity: %v, available: %v. "
	containerMessageFmt                 = "Container %s was using %s, request is %s, has larger consumption of %v. "
	podMessageFmt                       = "Pod %s was using %s, request is %s, has larger consumption of %v. "
	containerEphemeralStorageMessageFmt = "Container %s exceeded its local ephemeral storage limit %q. "
	podEphemeralStorageMessageFmt       = "Pod ephemeral local storage usage exceeds the total limit of containers %s. "
	emptyDirMessageFmt                  = "Usage of EmptyDir volume %q exceeds the limit %q. "
)

func metav1Time(t time.Time) metav1.Time { return metav1.NewTime(t) }

// evictionMessage explains an eviction for pressure on res: the threshold and
// what was available, then the pod (with pod-level requests) and the
// containers using more of res than they request.
func evictionMessage(res v1.ResourceName, pod *v1.Pod, stats podStatsFunc, acted []Threshold, obs observations) string {
	msg := fmt.Sprintf(nodeLowMessageFmt, res)
	for _, t := range acted {
		if signals[t.Signal].resource != res {
			continue
		}
		if q, avail, ok := thresholdQuantity(t, obs); ok {
			msg += fmt.Sprintf(thresholdMetMessageFmt, q, avail)
			break
		}
	}
	ps, ok := stats(pod)
	if !ok {
		return msg
	}
	if res == v1.ResourceMemory && resourcehelper.IsPodLevelResourcesSet(pod) {
		if req, ok := pod.Spec.Resources.Requests[v1.ResourceMemory]; ok && ps.Memory != nil {
			msg += fmt.Sprintf(podMessageFmt, pod.Name, bytesQuantity(uint64(memoryUsage(ps))), req.String(), res)
		}
	}
	containers := append(append([]v1.Container{}, pod.Spec.Containers...), pod.Spec.InitContainers...)
	for _, cs := range ps.Containers {
		for _, c := range containers {
			if c.Name != cs.Name {
				continue
			}
			req := c.Resources.Requests[res]
			var usage *resource.Quantity
			switch res {
			case v1.ResourceEphemeralStorage:
				if cs.Rootfs != nil && cs.Rootfs.UsedBytes != nil && cs.Logs != nil && cs.Logs.UsedBytes != nil {
					usage = bytesQuantity(*cs.Rootfs.UsedBytes + *cs.Logs.UsedBytes)
				}
			case v1.ResourceMemory:
				if cs.Memory != nil && cs.Memory.WorkingSetBytes != nil {
					usage = bytesQuantity(*cs.Memory.WorkingSetBytes)
				}
			}
			if usage != nil && usage.Cmp(req) > 0 {
				msg += fmt.Sprintf(containerMessageFmt, c.Name, usage.String(), req.String(), res)
			}
			break
		}
	}
	return msg
}

// localStorageEviction evicts every pod exceeding an emptyDir sizeLimit, its
// pod-level ephemeral-storage limit or a container's ephemeral-storage limit.
func (m *Manager) localStorageEviction(ctx context.Context, pods []*v1.Pod, stats podStatsFunc) ([]*v1.Pod, error) {
	var evicted []*v1.Pod
	var errs []error
	for _, pod := range pods {
		ps, ok := stats(pod)
		if !ok {
			continue
		}
		msg := localStorageViolation(ps, pod, m.dedicatedImageFs)
		if msg == "" {
			continue
		}
		if tried, err := m.evict(ctx, pod, HardEvictionGracePeriodSeconds, msg, nil); tried {
			evicted = append(evicted, pod)
			errs = append(errs, err)
		}
	}
	return evicted, errors.Join(errs...)
}

// localStorageViolation gives the eviction message of the first local storage
// limit the pod exceeds, or "". A container's usage is its logs, plus its
// writable layer when that is on the nodefs (no dedicated imagefs).
func localStorageViolation(ps statsapi.PodStats, pod *v1.Pod, dedicatedImageFs bool) string {
	volumeUsed := map[string]uint64{}
	for _, vs := range ps.VolumeStats {
		if vs.UsedBytes != nil {
			volumeUsed[vs.Name] = *vs.UsedBytes
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.Sign() <= 0 {
			continue
		}
		used, ok := volumeUsed[v.Name]
		if ok && bytesQuantity(used).Cmp(*v.EmptyDir.SizeLimit) > 0 {
			return fmt.Sprintf(emptyDirMessageFmt, v.Name, v.EmptyDir.SizeLimit.String())
		}
	}

	if limit, ok := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})[v1.ResourceEphemeralStorage]; ok {
		var used uint64
		if ps.EphemeralStorage != nil && ps.EphemeralStorage.UsedBytes != nil {
			used = *ps.EphemeralStorage.UsedBytes
		}
		if bytesQuantity(used).Cmp(limit) > 0 {
			return fmt.Sprintf(podEphemeralStorageMessageFmt, limit.String())
		}
	}

	limits := map[string]resource.Quantity{}
	for _, c := range pod.Spec.Containers {
		if l, ok := c.Resources.Limits[v1.ResourceEphemeralStorage]; ok && !l.IsZero() {
			limits[c.Name] = l
		}
	}
	for _, cs := range ps.Containers {
		limit, ok := limits[cs.Name]
		if !ok {
			continue
		}
		used := usedBytes(cs.Logs)
		if !dedicatedImageFs {
			used += usedBytes(cs.Rootfs)
		}
		if limit.Cmp(*resource.NewQuantity(used, resource.BinarySI)) < 0 {
			return fmt.Sprintf(containerEphemeralStorageMessageFmt, cs.Name, limit.String())
		}
	}
	return ""
}
