package containerid

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{"nodekit://0123abcd", ID{Type: "nodekit", ID: "0123abcd"}, false},
		{"containerd://x", ID{Type: "containerd", ID: "x"}, false},
		{"nodekit://", ID{Type: "nodekit"}, false},
		{"://abc", ID{ID: "abc"}, false},
		{"a://b://c", ID{Type: "a", ID: "b://c"}, false}, // split at the first
		{"0123abcd", ID{}, true},                         // a bare CRI ID
		{"", ID{}, true},
		{"nodekit:/x", ID{}, true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestCRIID(t *testing.T) {
	for in, want := range map[string]string{
		"nodekit://0123abcd": "0123abcd",
		"0123abcd":           "0123abcd", // bare: itself
		"a://b://c":          "b://c",
		"nodekit://":         "",
		"":                   "",
	} {
		if got := CRIID(in); got != want {
			t.Errorf("CRIID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		id   ID
		want string
	}{
		{ID{Type: "nodekit", ID: "0123abcd"}, "nodekit://0123abcd"},
		{ID{}, "://"},
		{ID{Type: "nodekit"}, "nodekit://"},
	} {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.id, got, tc.want)
		}
		if tc.id.IsEmpty() != (tc.id == ID{}) {
			t.Errorf("%+v.IsEmpty() = %v", tc.id, tc.id.IsEmpty())
		}
	}
	// String and Parse round-trip.
	id := ID{Type: "nodekit", ID: "0123abcd"}
	if back, err := Parse(id.String()); err != nil || back != id {
		t.Errorf("Parse(String()) = %+v, %v; want %+v", back, err, id)
	}
}
