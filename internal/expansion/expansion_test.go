package expansion

import "testing"

func TestExpand(t *testing.T) {
	lookup := Map(map[string]string{"A": "a", "EMPTY": "", "B": "$(A)"})
	tests := map[string]string{
		"plain":          "plain",
		"$(A)":           "a",
		"x$(A)y$(A)":     "xaya",
		"$(EMPTY)-":      "-",
		"$(MISSING)":     "$(MISSING)",
		"$$(A)":          "$(A)",
		"$$$(A)":         "$a",
		"$(A":            "$(A",
		"$(A $$":         "$(A $$", // an unclosed reference keeps the rest as written
		"100$":           "100$",
		"$x":             "$x",
		"$(B)":           "$(A)", // no recursion
		"a $(A) $$ $(A)": "a a $ a",
	}
	for in, want := range tests {
		if got := Expand(in, lookup); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}
