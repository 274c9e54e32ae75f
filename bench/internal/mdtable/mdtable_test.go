package mdtable

import (
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		rows [][]string
		want string
	}{
		{"plain", [][]string{{"runtime", "p50"}, {"nodekit", "1.0"}, {"containerd", "250.0"}},
			"| runtime    |   p50 |\n| ---------- | ----: |\n| nodekit    |   1.0 |\n| containerd | 250.0 |\n"},
		{"narrow and short rows", [][]string{{"a", "b", "c"}, {"x"}, {"y", "1", "2", "extra"}},
			"| a  |  b |  c |\n| -- | -: | -: |\n| x  |    |    |\n| y  |  1 |  2 |\n"},
		{"widths in runes", [][]string{{"target", "met"}, {"p50 ≤ 0.7 ×", "yes"}},
			"| target      | met |\n| ----------- | --: |\n| p50 ≤ 0.7 × | yes |\n"},
		{"nothing", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			Write(&b, tt.rows)
			if b.String() != tt.want {
				t.Errorf("Write:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}
