package probes

import (
	"os/exec"
	"strings"
	"testing"

	criclient "k8s.io/cri-client/pkg"
)

// Programs that use probes must not get k8s.io/cri-client and the
// OpenTelemetry packages it pulls in (about 30) for one error value: exec
// probe timeouts are recognized without it (isTimeout).
func TestNoHeavyDependencies(t *testing.T) {
	goCmd, err := exec.LookPath("go") // go test puts its GOROOT/bin first in PATH
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goCmd, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"k8s.io/cri-client", "go.opentelemetry.io"} {
			if pkg == banned || strings.HasPrefix(pkg, banned+"/") {
				t.Errorf("probes depends on %s", pkg)
			}
		}
	}
}

// isTimeout recognizes cri-client's ErrCommandTimedOut by its text: it must
// still be the text of the real value.
func TestCRIClientTimeoutText(t *testing.T) {
	if got := criclient.ErrCommandTimedOut.Error(); got != criClientTimedOut {
		t.Fatalf("cri-client's ErrCommandTimedOut is %q now, probes matches %q", got, criClientTimedOut)
	}
}
