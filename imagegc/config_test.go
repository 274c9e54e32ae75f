package imagegc

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

func TestOptionsFromConfig(t *testing.T) {
	for _, tc := range []struct {
		name           string
		cfg            *kubeletconfig.KubeletConfiguration
		high, low      int
		minAge, maxAge time.Duration
		wantErr        []string // substrings, one per faulty field
	}{{
		name: "nil: the kubelet's defaults", high: 85, low: 80, minAge: 2 * time.Minute,
	}, {
		name: "unset fields: the kubelet's defaults", cfg: &kubeletconfig.KubeletConfiguration{},
		high: 85, low: 80, minAge: 2 * time.Minute,
	}, {
		name: "every field",
		cfg: &kubeletconfig.KubeletConfiguration{
			ImageGCHighThresholdPercent: ptr.To[int32](90),
			ImageGCLowThresholdPercent:  ptr.To[int32](50),
			ImageMinimumGCAge:           metav1.Duration{Duration: time.Minute},
			ImageMaximumGCAge:           metav1.Duration{Duration: 24 * time.Hour},
		},
		high: 90, low: 50, minAge: time.Minute, maxAge: 24 * time.Hour,
	}, {
		name: "high 100 turns threshold collection off",
		cfg:  &kubeletconfig.KubeletConfiguration{ImageGCHighThresholdPercent: ptr.To[int32](100)},
		high: 100, low: 80, minAge: 2 * time.Minute,
	}, {
		name:    "high out of range",
		cfg:     &kubeletconfig.KubeletConfiguration{ImageGCHighThresholdPercent: ptr.To[int32](101)},
		wantErr: []string{"imageGCHighThresholdPercent: 101 must be between 0 and 100"},
	}, {
		name:    "low out of range",
		cfg:     &kubeletconfig.KubeletConfiguration{ImageGCLowThresholdPercent: ptr.To[int32](-1)},
		wantErr: []string{"imageGCLowThresholdPercent: -1 must be between 0 and 100"},
	}, {
		name:    "low not below high",
		cfg:     &kubeletconfig.KubeletConfiguration{ImageGCHighThresholdPercent: ptr.To[int32](70), ImageGCLowThresholdPercent: ptr.To[int32](70)},
		wantErr: []string{"imageGCLowThresholdPercent: 70 must be less than imageGCHighThresholdPercent 70"},
	}, {
		name:    "low 0",
		cfg:     &kubeletconfig.KubeletConfiguration{ImageGCLowThresholdPercent: ptr.To[int32](0)},
		wantErr: []string{"imageGCLowThresholdPercent: 0 is not supported"},
	}, {
		name:    "negative minimum age",
		cfg:     &kubeletconfig.KubeletConfiguration{ImageMinimumGCAge: metav1.Duration{Duration: -time.Second}},
		wantErr: []string{"imageMinimumGCAge: -1s must not be negative"},
	}, {
		name:    "negative maximum age",
		cfg:     &kubeletconfig.KubeletConfiguration{ImageMaximumGCAge: metav1.Duration{Duration: -time.Second}},
		wantErr: []string{"imageMaximumGCAge: -1s must not be negative"},
	}, {
		name:    "maximum age not above the minimum",
		cfg:     &kubeletconfig.KubeletConfiguration{ImageMaximumGCAge: metav1.Duration{Duration: time.Minute}},
		wantErr: []string{"imageMaximumGCAge: 1m0s must be greater than imageMinimumGCAge 2m0s"},
	}, {
		name: "every error at once",
		cfg: &kubeletconfig.KubeletConfiguration{
			ImageGCHighThresholdPercent: ptr.To[int32](200),
			ImageGCLowThresholdPercent:  ptr.To[int32](300),
			ImageMaximumGCAge:           metav1.Duration{Duration: -time.Hour},
		},
		wantErr: []string{"imageGCHighThresholdPercent: 200", "imageGCLowThresholdPercent: 300 must be between", "imageGCLowThresholdPercent: 300 must be less than", "imageMaximumGCAge: -1h0m0s"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := OptionsFromConfig(tc.cfg)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("OptionsFromConfig = %+v, want an error", o)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("OptionsFromConfig: %v", err)
			}
			if o.HighThresholdPercent != tc.high || o.LowThresholdPercent != tc.low || o.MinAge != tc.minAge || o.MaxAge != tc.maxAge {
				t.Fatalf("OptionsFromConfig = %+v, want high %d low %d minAge %v maxAge %v", o, tc.high, tc.low, tc.minAge, tc.maxAge)
			}
			// What it returns, New accepts.
			o.Images, o.Runtime = &fakeRuntime{}, &fakeRuntime{}
			if _, err := New(o); err != nil {
				t.Fatalf("New(OptionsFromConfig(...)): %v", err)
			}
		})
	}
}
