package testenv

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// SoakRounds is the number of rounds of a crash or soak test: the environment
// variable NODEKIT_SOAK_ROUNDS (`make soak`), else short (`make test`).
func SoakRounds(t testing.TB, short int) int {
	t.Helper()
	v := os.Getenv("NODEKIT_SOAK_ROUNDS")
	if v == "" {
		return short
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("NODEKIT_SOAK_ROUNDS=%q: want a positive number", v)
	}
	return n
}

// CrashSeed is the seed of a randomized test's choices: NODEKIT_CRASH_SEED,
// else a new one. It is logged (and printed on stderr, which a soak's log keeps
// even without -v) so that a failing run can be replayed.
func CrashSeed(t testing.TB) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if v := os.Getenv("NODEKIT_CRASH_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("NODEKIT_CRASH_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (replay with NODEKIT_CRASH_SEED=%d)", seed, seed)
	fmt.Fprintf(os.Stderr, "%s: seed %d\n", t.Name(), seed)
	return seed
}
