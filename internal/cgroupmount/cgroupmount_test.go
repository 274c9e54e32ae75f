package cgroupmount

import (
	"slices"
	"testing"

	"github.com/moby/sys/mountinfo"
)

func TestPointsOnceInOrder(t *testing.T) {
	got := points([]*mountinfo.Info{
		{Mountpoint: "/sys/fs/cgroup/memory", FSType: "cgroup"},
		{Mountpoint: "/sys/fs/cgroup/unified", FSType: "cgroup2"},
		{Mountpoint: "/sys/fs/cgroup/memory", FSType: "cgroup"}, // mounted again on top
	})
	if want := []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"}; !slices.Equal(got, want) {
		t.Errorf("points = %q, want %q", got, want)
	}
	if got := points(nil); got == nil || len(got) != 0 {
		t.Errorf("points(nil) = %#v, want an empty list", got)
	}
}
