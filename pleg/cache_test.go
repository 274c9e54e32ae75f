package pleg

import (
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// getNewerThan runs GetNewerThan in the background; the channel receives its
// result.
func getNewerThan(c Cache, uid types.UID, minTime time.Time) <-chan *PodStatus {
	ch := make(chan *PodStatus, 1)
	go func() {
		st, _ := c.GetNewerThan(uid, minTime)
		ch <- st
	}()
	return ch
}

// stillBlocked asserts that ch has no value yet. A blocked call can only be shown
// by waiting a little; a wrong wake-up would show up here.
func stillBlocked(t *testing.T, ch <-chan *PodStatus, why string) {
	t.Helper()
	select {
	case st := <-ch:
		t.Fatalf("GetNewerThan returned %+v, want it blocked (%s)", st, why)
	case <-time.After(50 * time.Millisecond):
	}
}

func woken(t *testing.T, ch <-chan *PodStatus) *PodStatus {
	t.Helper()
	select {
	case st := <-ch:
		return st
	case <-time.After(5 * time.Second):
		t.Fatal("GetNewerThan still blocked")
		return nil
	}
}

func TestCacheGetNewerThanWakesOnNewerSet(t *testing.T) {
	c := NewCache()
	uid := types.UID("p")
	c.Set(uid, &PodStatus{ID: uid, Name: "old"}, nil, t0)
	ch := getNewerThan(c, uid, t0)
	stillBlocked(t, ch, "the cached status is not newer than minTime")
	c.Set(uid, &PodStatus{ID: uid, Name: "same-time"}, nil, t0)
	stillBlocked(t, ch, "a status at minTime is not newer")
	c.Set("other", &PodStatus{ID: "other"}, nil, t0.Add(time.Second))
	stillBlocked(t, ch, "another pod's status changed")
	c.Set(uid, &PodStatus{ID: uid, Name: "new"}, nil, t0.Add(time.Millisecond))
	if st := woken(t, ch); st.Name != "new" {
		t.Fatalf("woke with %q, want the new status", st.Name)
	}
}

func TestCacheGetNewerThanWakesOnUpdateTime(t *testing.T) {
	c := NewCache()
	uid := types.UID("p")
	c.Set(uid, &PodStatus{ID: uid, Name: "cached"}, nil, t0)
	ch := getNewerThan(c, uid, t0.Add(time.Second))
	c.UpdateTime(t0.Add(time.Second))
	stillBlocked(t, ch, "the cache is current as of minTime, not after")
	c.UpdateTime(t0.Add(2 * time.Second))
	if st := woken(t, ch); st.Name != "cached" {
		t.Fatalf("woke with %q, want the cached status", st.Name)
	}
	// An unknown pod waits the same way and gets an empty status.
	ch = getNewerThan(c, "unknown", t0.Add(3*time.Second))
	stillBlocked(t, ch, "nothing newer yet")
	c.UpdateTime(t0.Add(4 * time.Second))
	if st := woken(t, ch); st.ID != "unknown" || len(st.ContainerStatuses) != 0 {
		t.Fatalf("unknown pod: got %+v, want an empty status with its ID", st)
	}
}

func TestCacheUpdateTimeNeverGoesBack(t *testing.T) {
	c := NewCache()
	c.UpdateTime(t0.Add(2 * time.Second))
	c.UpdateTime(t0) // older: ignored
	select {
	case <-getNewerThan(c, "p", t0.Add(time.Second)):
	case <-time.After(5 * time.Second):
		t.Fatal("the cache time went back: GetNewerThan blocks for a time before it")
	}
}

func TestCacheSet(t *testing.T) {
	uid := types.UID("p")
	boom := errors.New("boom")
	tests := []struct {
		name      string
		first     time.Time
		second    time.Time
		secondErr error
		changed   bool
		wantName  string
		wantErr   error
	}{
		{"newer replaces", t0, t0.Add(time.Second), nil, true, "second", nil},
		{"same time replaces", t0, t0, nil, true, "second", nil},
		{"older is ignored", t0.Add(time.Second), t0, nil, false, "first", nil},
		{"an error is recorded", t0, t0.Add(time.Second), boom, true, "second", boom},
		{"an older error is ignored", t0.Add(time.Second), t0, boom, false, "first", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCache()
			if !c.Set(uid, &PodStatus{ID: uid, Name: "first"}, nil, tt.first) {
				t.Fatal("first Set reported no change")
			}
			if got := c.Set(uid, &PodStatus{ID: uid, Name: "second"}, tt.secondErr, tt.second); got != tt.changed {
				t.Fatalf("second Set changed = %v, want %v", got, tt.changed)
			}
			st, err := c.Get(uid)
			if st.Name != tt.wantName || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Get = %q, %v; want %q, %v", st.Name, err, tt.wantName, tt.wantErr)
			}
		})
	}
}

func TestCacheGetAndDelete(t *testing.T) {
	c := NewCache()
	uid := types.UID("p")
	if st, err := c.Get(uid); err != nil || st.ID != uid || st.Name != "" {
		t.Fatalf("unknown pod: %+v, %v; want an empty status with its ID", st, err)
	}
	c.Set(uid, &PodStatus{ID: uid, Name: "x"}, nil, t0)
	if st, _ := c.Get(uid); st.Name != "x" {
		t.Fatalf("Get after Set: %+v", st)
	}
	c.Delete(uid)
	if st, _ := c.Get(uid); st.Name != "" {
		t.Fatalf("Get after Delete: %+v, want empty", st)
	}
	// A deleted entry does not hold back a later, older Set.
	if !c.Set(uid, &PodStatus{ID: uid, Name: "y"}, nil, t0.Add(-time.Hour)) {
		t.Fatal("Set after Delete was ignored")
	}
}

func TestCacheGetIfNewerThan(t *testing.T) {
	c := NewCache()
	uid := types.UID("p")
	if _, ok, _ := c.GetIfNewerThan(uid, time.Time{}); ok {
		t.Fatal("an empty cache never refreshed answered for the zero time")
	}
	c.Set(uid, &PodStatus{ID: uid, Name: "cached"}, nil, t0)
	if _, ok, _ := c.GetIfNewerThan(uid, t0); ok {
		t.Fatal("a status at minTime is not newer")
	}
	if st, ok, err := c.GetIfNewerThan(uid, t0.Add(-time.Nanosecond)); !ok || err != nil || st.Name != "cached" {
		t.Fatalf("got %+v, %v, %v; want the cached status", st, ok, err)
	}
	// A refresh of the whole cache after minTime is no proof that the pod's
	// entry holds what happened before it (an evented PLEG's refresh is not).
	c.UpdateTime(t0.Add(time.Second))
	if _, ok, _ := c.GetIfNewerThan(uid, t0.Add(time.Millisecond)); ok {
		t.Fatal("a cache refreshed after minTime answered for a pod whose entry is older")
	}
	if _, ok, _ := c.GetIfNewerThan("unknown", t0); ok {
		t.Fatal("an unknown pod answered for a non-zero minTime")
	}
	// The zero minTime (nothing changed by the caller) takes any refreshed
	// cache, and an unknown pod's empty status.
	if st, ok, _ := c.GetIfNewerThan("unknown", time.Time{}); !ok || st.ID != "unknown" || len(st.ContainerStatuses) != 0 {
		t.Fatalf("an unknown pod of a refreshed cache: got %+v, %v; want an empty status", st, ok)
	}
	c.Set(uid, nil, errors.New("inspect failed"), t0.Add(2*time.Second))
	if _, ok, err := c.GetIfNewerThan(uid, t0.Add(time.Second)); !ok || err == nil {
		t.Fatalf("a cached inspection error: got %v, %v", ok, err)
	}
}
