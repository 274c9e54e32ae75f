package imagegc

import (
	"errors"
	"fmt"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// OptionsFromConfig returns Options holding the image garbage collection
// policy of a kubelet configuration: imageGCHighThresholdPercent,
// imageGCLowThresholdPercent, imageMinimumGCAge and imageMaximumGCAge, with
// the kubelet's defaults for unset fields (85, 80, 2m, 0) and its validation;
// an error names each faulty field. A nil cfg gives the defaults. The caller
// fills in the rest (Images, Runtime, ...).
//
// One departure: an explicit imageGCLowThresholdPercent of 0 is refused, since
// a zero LowThresholdPercent means the default in Options.
func OptionsFromConfig(cfg *kubeletconfig.KubeletConfiguration) (Options, error) {
	if cfg == nil {
		cfg = &kubeletconfig.KubeletConfiguration{}
	}
	high, low := int32(DefaultHighThresholdPercent), int32(DefaultLowThresholdPercent)
	if cfg.ImageGCHighThresholdPercent != nil {
		high = *cfg.ImageGCHighThresholdPercent
	}
	if cfg.ImageGCLowThresholdPercent != nil {
		low = *cfg.ImageGCLowThresholdPercent
	}
	minAge, maxAge := cfg.ImageMinimumGCAge.Duration, cfg.ImageMaximumGCAge.Duration
	if minAge == 0 {
		minAge = DefaultMinAge
	}

	var errs []error
	if high < 0 || high > 100 {
		errs = append(errs, fmt.Errorf("imageGCHighThresholdPercent: %d must be between 0 and 100, inclusive", high))
	}
	switch {
	case low < 0 || low > 100:
		errs = append(errs, fmt.Errorf("imageGCLowThresholdPercent: %d must be between 0 and 100, inclusive", low))
	case low == 0:
		errs = append(errs, errors.New("imageGCLowThresholdPercent: 0 is not supported; use 1 or more"))
	}
	if low >= high {
		errs = append(errs, fmt.Errorf("imageGCLowThresholdPercent: %d must be less than imageGCHighThresholdPercent %d", low, high))
	}
	if minAge < 0 {
		errs = append(errs, fmt.Errorf("imageMinimumGCAge: %v must not be negative", minAge))
	}
	if maxAge < 0 {
		errs = append(errs, fmt.Errorf("imageMaximumGCAge: %v must not be negative", maxAge))
	} else if maxAge > 0 && maxAge <= minAge {
		errs = append(errs, fmt.Errorf("imageMaximumGCAge: %v must be greater than imageMinimumGCAge %v", maxAge, minAge))
	}
	if err := errors.Join(errs...); err != nil {
		return Options{}, fmt.Errorf("invalid image garbage collection configuration: %w", err)
	}
	return Options{
		HighThresholdPercent: int(high),
		LowThresholdPercent:  int(low),
		MinAge:               minAge,
		MaxAge:               maxAge,
	}, nil
}
