package timeline

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// memoryBudget is the timelines' share of the agent's idle memory target
// (100 MiB RSS for the whole agent) with 250 pods.
const memoryBudget = 16 << 20

// TestMemory250FullRings fills the rings of 250 pods with the defaults, with
// entries shaped for the worst case (every string freshly allocated), and
// checks the live heap they hold stays within memoryBudget.
func TestMemory250FullRings(t *testing.T) {
	if raceEnabled {
		t.Skip("memory figures under -race are the detector's")
	}
	shapes := []struct {
		name  string
		entry func(i int) Entry
	}{
		// ~125 bytes of text: the ring is full by count and by bytes at once.
		{"entries at both bounds", func(i int) Entry {
			return Entry{Kind: Probe, Container: "app", What: "liveness probe failed", Reason: "Unhealthy",
				Message: fmt.Sprintf("Liveness probe failed: %080d", i), Event: Warning}
		}},
		// Every string its own small allocation.
		{"many small strings", func(i int) Entry {
			return Entry{Kind: Kind(fmt.Sprintf("K%06d", i)), Container: fmt.Sprintf("c%014d", i), What: fmt.Sprintf("w%022d", i),
				Reason: fmt.Sprintf("r%014d", i), Message: fmt.Sprintf("m%030d", i), Error: fmt.Sprintf("e%014d", i),
				Event: fmt.Sprintf("v%06d", i), Took: time.Duration(i)}
		}},
		// Message and Error over the cap: cut, each a new string.
		{"capped messages", func(i int) Entry {
			return Entry{Kind: Hook, What: "preStop hook failed", Message: fmt.Sprintf("%d%s", i, strings.Repeat("o", 4000)),
				Error: fmt.Sprintf("%d%s", i, strings.Repeat("e", 4000)), Took: time.Second}
		}},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			before := heap()
			r := New(Options{})
			for p := range 250 {
				uid := types.UID(fmt.Sprintf("%036d", p))
				r.Add(pod("default", fmt.Sprint("pod-", p), string(uid)))
				l := r.Pod(uid)
				for i := range 3 * DefaultEntries {
					l.Record(s.entry(p*10000 + i))
				}
			}
			used := heap() - before
			tl, _ := r.Get(types.UID(fmt.Sprintf("%036d", 0)))
			runtime.KeepAlive(r)
			t.Logf("250 pods: %.1f MiB (%.1f KiB a pod, %d entries in a ring)", float64(used)/(1<<20), float64(used)/250/1024, len(tl.Entries))
			if used > memoryBudget {
				t.Errorf("250 full timelines hold %d bytes, over the budget of %d", used, memoryBudget)
			}
		})
	}
}

// heap is the live heap after a collection.
func heap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
