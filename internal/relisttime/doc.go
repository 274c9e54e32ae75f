// Package relisttime measures how long the generic PLEG's relists take against
// a runtime, for the benchmarks: it runs a real pleg.NewGeneric with a short
// relist period and reads the durations from its Metrics, as a node's
// kubelet_pleg_relist_duration_seconds would. It is not part of the library.
package relisttime
