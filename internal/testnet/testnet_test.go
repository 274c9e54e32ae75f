package testnet

import (
	"net"
	"slices"
	"strings"
	"testing"
)

func TestSplitRule(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`-A POSTROUTING -s 10.1.2.3/32 -j CNI-abc`, []string{"-A", "POSTROUTING", "-s", "10.1.2.3/32", "-j", "CNI-abc"}},
		{
			`-A CNI-x -d 10.1.2.0/24 -m comment --comment "name: \"nk1\" id: \"ab\"" -j ACCEPT`,
			[]string{"-A", "CNI-x", "-d", "10.1.2.0/24", "-m", "comment", "--comment", `name: "nk1" id: "ab"`, "-j", "ACCEPT"},
		},
		{`-A X --comment ""`, []string{"-A", "X", "--comment", ""}},
	}
	for _, tc := range tests {
		if got := splitRule(tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("splitRule(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
	if got := ruleTarget(splitRule(tests[1].line)); got != "ACCEPT" {
		t.Errorf("ruleTarget = %q", got)
	}
}

func TestFreeSubnetStaysInPool(t *testing.T) {
	for _, pool := range []string{"10.64.0.0/10", "10.128.0.0/10", "10.200.7.0/24"} {
		_, p, err := net.ParseCIDR(pool)
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			sub := freeSubnet(t, p)
			if ones, _ := sub.Mask.Size(); ones != 24 || !p.Contains(sub.IP) || sub.IP[3] != 0 {
				t.Fatalf("freeSubnet(%s) = %s", pool, sub)
			}
		}
	}
}

func TestPodChains(t *testing.T) {
	n := &Network{Name: "nk01234567"}
	c := n.PodChains("abc")
	if len(c) != 2 || len(c[0]) != 28 || len(c[1]) != 28 || c[0][:4] != "CNI-" || c[1][:7] != "CNI-DN-" || !strings.HasPrefix(c[0][4:], c[1][7:]) {
		t.Errorf("PodChains = %q", c)
	}
}
