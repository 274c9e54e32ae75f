package imagegc

import (
	"fmt"

	crierrors "k8s.io/cri-api/pkg/errors"
)

// Reasons of the warnings given to a Recorder: the kubelet's event reasons.
const (
	// ReasonFreeDiskSpaceFailed: image garbage collection could not bring the
	// image filesystem down to the low threshold.
	ReasonFreeDiskSpaceFailed = "FreeDiskSpaceFailed"
	// ReasonInvalidDiskCapacity: the image filesystem reported a capacity of 0.
	ReasonInvalidDiskCapacity = "InvalidDiskCapacity"
	// ReasonImageGCFailed: image garbage collection failed twice or more in a
	// row (Run only; a single failure is only logged, as in the kubelet).
	ReasonImageGCFailed = "ImageGCFailed"
	// ReasonContainerGCFailed: a container garbage collection failed (Run only).
	ReasonContainerGCFailed = "ContainerGCFailed"
)

// Recorder receives the warnings the kubelet posts as events about its node:
// a reason (one of the Reason constants) and a message. It is called from the
// goroutine doing the collection and must not block for long.
type Recorder func(reason, message string)

// FreeDiskSpaceError is the error of an image garbage collection that found
// the image filesystem over the high threshold and could not free enough
// bytes to bring it down to the low threshold: in-use, pinned and too young
// images are never removed.
type FreeDiskSpaceError struct {
	// Wanted is how many bytes had to be freed to reach the low threshold.
	Wanted uint64
	// Freed is how many bytes the removed images held.
	Freed uint64
	// UsagePercent and HighThresholdPercent are the usage that triggered
	// the collection and the threshold it crossed.
	UsagePercent, HighThresholdPercent int
}

func (e *FreeDiskSpaceError) Error() string {
	return fmt.Sprintf("image filesystem at %d%% usage (high threshold %d%%): wanted to free %d bytes, but only %d bytes of images were eligible for removal",
		e.UsagePercent, e.HighThresholdPercent, e.Wanted, e.Freed)
}

// isNotFound reports whether a CRI call failed because its object is gone.
func isNotFound(err error) bool {
	return err != nil && crierrors.IsNotFound(err)
}

// record calls r if set.
func (r Recorder) record(reason, message string) {
	if r != nil {
		r(reason, message)
	}
}
