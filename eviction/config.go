package eviction

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// DefaultPressureTransitionPeriod is the kubelet's evictionPressureTransitionPeriod
// default: how long a pressure condition stays true after its last observation.
const DefaultPressureTransitionPeriod = 5 * time.Minute

// nodeAllocatableEnforcementKey in enforceNodeAllocatable makes the kubelet add
// an allocatableMemory.available threshold per hard memory.available one.
const nodeAllocatableEnforcementKey = "pods"

// DefaultEvictionHard returns the kubelet's (Linux) evictionHard default, used
// when a configuration sets none.
func DefaultEvictionHard() map[string]string {
	return map[string]string{
		"memory.available":   "100Mi",
		"nodefs.available":   "10%",
		"nodefs.inodesFree":  "5%",
		"imagefs.available":  "15%",
		"imagefs.inodesFree": "5%",
	}
}

// Config is the eviction part of a kubelet configuration, ready for Options.
type Config struct {
	// Thresholds are the hard thresholds, then the soft ones, each sorted by
	// signal, then the allocatableMemory.available twins.
	Thresholds []Threshold
	// PressureTransitionPeriod: a pressure condition stays true this long
	// after its threshold was last met (default DefaultPressureTransitionPeriod).
	PressureTransitionPeriod time.Duration
	// MaxPodGracePeriodSeconds caps the grace period of pods evicted for a
	// soft threshold (evictionMaxPodGracePeriod). As in the kubelet, 0 (its
	// default) gives them none.
	MaxPodGracePeriodSeconds int64
}

// ParseConfig reads the eviction settings of a kubelet configuration as the
// kubelet does: evictionHard (the kubelet's default when nil, or merged with it
// when mergeDefaultEvictionSettings is true; "0%" and "100%" disable a signal),
// evictionSoft with evictionSoftGracePeriod (a soft threshold without a grace
// period is an error), evictionMinimumReclaim, evictionPressureTransitionPeriod
// (0 means 5m), evictionMaxPodGracePeriod, and enforceNodeAllocatable (when it
// holds "pods", the default, every hard memory.available threshold gets an
// allocatableMemory.available twin). containerfs.* keys are accepted and
// ignored. Errors name the field and the key. A nil cfg gives the defaults.
func ParseConfig(cfg *kubeletconfigv1beta1.KubeletConfiguration) (Config, error) {
	if cfg == nil {
		cfg = &kubeletconfigv1beta1.KubeletConfiguration{}
	}
	hard := cfg.EvictionHard
	if hard == nil {
		hard = DefaultEvictionHard()
	} else if cfg.MergeDefaultEvictionSettings != nil && *cfg.MergeDefaultEvictionSettings {
		merged := DefaultEvictionHard()
		maps.Copy(merged, hard)
		hard = merged
	}

	var out Config
	hardThresholds, err := parseStatements("evictionHard", hard)
	if err != nil {
		return Config{}, err
	}
	softThresholds, err := parseStatements("evictionSoft", cfg.EvictionSoft)
	if err != nil {
		return Config{}, err
	}
	grace, err := parseGracePeriods(cfg.EvictionSoftGracePeriod)
	if err != nil {
		return Config{}, err
	}
	minReclaim, err := parseMinReclaims(cfg.EvictionMinimumReclaim)
	if err != nil {
		return Config{}, err
	}
	for i := range softThresholds {
		sig := softThresholds[i].Signal
		period, ok := grace[sig]
		if !ok {
			return Config{}, fmt.Errorf("evictionSoft[%q]: no grace period for it in evictionSoftGracePeriod", sig)
		}
		softThresholds[i].GracePeriod = period
	}
	out.Thresholds = append(hardThresholds, softThresholds...)
	for i := range out.Thresholds {
		if v, ok := minReclaim[out.Thresholds[i].Signal]; ok {
			out.Thresholds[i].MinReclaim = &v
		}
	}

	enforce := cfg.EnforceNodeAllocatable
	if enforce == nil {
		enforce = []string{nodeAllocatableEnforcementKey}
	}
	if slices.Contains(enforce, nodeAllocatableEnforcementKey) {
		out.Thresholds = addAllocatableThresholds(out.Thresholds)
	}

	out.PressureTransitionPeriod = cfg.EvictionPressureTransitionPeriod.Duration
	if out.PressureTransitionPeriod < 0 {
		return Config{}, fmt.Errorf("evictionPressureTransitionPeriod: must not be negative, got %v", out.PressureTransitionPeriod)
	}
	if out.PressureTransitionPeriod == 0 {
		out.PressureTransitionPeriod = DefaultPressureTransitionPeriod
	}
	if cfg.EvictionMaxPodGracePeriod < 0 {
		return Config{}, fmt.Errorf("evictionMaxPodGracePeriod: must not be negative, got %d", cfg.EvictionMaxPodGracePeriod)
	}
	out.MaxPodGracePeriodSeconds = int64(cfg.EvictionMaxPodGracePeriod)
	return out, nil
}

// addAllocatableThresholds copies each hard memory.available threshold to
// allocatableMemory.available, unless one is configured already.
func addAllocatableThresholds(ths []Threshold) []Threshold {
	for _, t := range ths {
		if t.Signal == SignalAllocatableMemoryAvailable && t.hard() {
			return ths
		}
	}
	var extra []Threshold
	for _, t := range ths {
		if t.Signal == SignalMemoryAvailable && t.hard() {
			extra = append(extra, Threshold{Signal: SignalAllocatableMemoryAvailable, Value: t.Value, MinReclaim: t.MinReclaim})
		}
	}
	return append(ths, extra...)
}

// checkSignal resolves a configuration key: ok false means ignore the key.
func checkSignal(field, key string) (sig Signal, ok bool, err error) {
	sig = Signal(key)
	if ignoredSignals[sig] {
		return sig, false, nil
	}
	if _, known := signals[sig]; !known {
		return sig, false, fmt.Errorf("%s[%q]: unknown eviction signal (known: %s)", field, key, strings.Join(knownSignals(), ", "))
	}
	return sig, true, nil
}

// eachSignal calls fn, in key order, for every key of statements (the field
// field) that names a signal the manager evaluates, with its trimmed value.
func eachSignal(field string, statements map[string]string, fn func(key string, sig Signal, val string) error) error {
	for _, key := range slices.Sorted(maps.Keys(statements)) {
		sig, ok, err := checkSignal(field, key)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := fn(key, sig, strings.TrimSpace(statements[key])); err != nil {
			return err
		}
	}
	return nil
}

// parseStatements parses evictionHard or evictionSoft, in key order.
func parseStatements(field string, statements map[string]string) ([]Threshold, error) {
	var out []Threshold
	err := eachSignal(field, statements, func(key string, sig Signal, val string) error {
		if strings.HasSuffix(val, "%") {
			if val == "0%" || val == "100%" {
				return nil // disables the signal, as in the kubelet
			}
			p, err := parsePercentage(val)
			if err != nil {
				return fmt.Errorf("%s[%q]: %w", field, key, err)
			}
			if p < 0 || p > 1 {
				return fmt.Errorf("%s[%q]: percentage %q must be between 0%% and 100%%", field, key, val)
			}
			out = append(out, Threshold{Signal: sig, Value: ThresholdValue{Percentage: p}})
			return nil
		}
		q, err := resource.ParseQuantity(val)
		if err != nil {
			return fmt.Errorf("%s[%q]: invalid quantity %q", field, key, val)
		}
		if q.Sign() <= 0 {
			return fmt.Errorf("%s[%q]: threshold must be positive, got %q", field, key, val)
		}
		out = append(out, Threshold{Signal: sig, Value: ThresholdValue{Quantity: &q}})
		return nil
	})
	return out, err
}

func parsePercentage(val string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(val, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("invalid percentage %q", val)
	}
	return f / 100, nil
}

func parseGracePeriods(statements map[string]string) (map[Signal]time.Duration, error) {
	const field = "evictionSoftGracePeriod"
	out := map[Signal]time.Duration{}
	err := eachSignal(field, statements, func(key string, sig Signal, val string) error {
		d, err := time.ParseDuration(val)
		if err != nil {
			return fmt.Errorf("%s[%q]: invalid duration %q", field, key, val)
		}
		if d < 0 {
			return fmt.Errorf("%s[%q]: grace period must not be negative, got %q", field, key, val)
		}
		out[sig] = d
		return nil
	})
	return out, err
}

func parseMinReclaims(statements map[string]string) (map[Signal]ThresholdValue, error) {
	const field = "evictionMinimumReclaim"
	out := map[Signal]ThresholdValue{}
	err := eachSignal(field, statements, func(key string, sig Signal, val string) error {
		if strings.HasSuffix(val, "%") {
			p, err := parsePercentage(val)
			if err != nil {
				return fmt.Errorf("%s[%q]: %w", field, key, err)
			}
			if p <= 0 || p > 1 {
				return fmt.Errorf("%s[%q]: percentage %q must be above 0%% and at most 100%%", field, key, val)
			}
			out[sig] = ThresholdValue{Percentage: p}
			return nil
		}
		q, err := resource.ParseQuantity(val)
		if err != nil {
			return fmt.Errorf("%s[%q]: invalid quantity %q", field, key, val)
		}
		if q.Sign() < 0 {
			return fmt.Errorf("%s[%q]: minimum reclaim must not be negative, got %q", field, key, val)
		}
		out[sig] = ThresholdValue{Quantity: &q}
		return nil
	})
	return out, err
}
