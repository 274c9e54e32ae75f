package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func matches(t *testing.T, re, s string) bool {
	t.Helper()
	ok, err := regexp.MatchString(re, s)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A JUnit report shaped like ginkgo v2's.
const junit = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5" disabled="0" errors="0" failures="2" time="3.5">
  <testsuite name="CRI validation" package="/x" tests="5" disabled="0" skipped="2" errors="0" failures="2" time="3.5">
    <properties><property name="SuiteSucceeded" value="false"></property></properties>
    <testcase name="[BeforeSuite]" classname="CRI validation" status="passed" time="0.1"></testcase>
    <testcase name="[It] [k8s.io] Image Manager listImage should get exactly 3 image in the result list [Conformance]" classname="CRI validation" status="passed" time="1"></testcase>
    <testcase name="[It] [k8s.io] Idempotence StopPodSandbox should not return an error if not found" classname="CRI validation" status="failed" time="0.1">
      <failure message="Unexpected error:&#xA;    &lt;*status.Error | 0x2b9b&gt;: &#xA;    rpc error: code = NotFound desc = not found&#xA;    {" type="failed">[FAILED] Unexpected error</failure>
    </testcase>
    <testcase name="[It] [k8s.io] Image Manager public image should timeout if requested [Conformance] [Serial]" classname="CRI validation" status="failed" time="0.1">
      <failure message="Expected&#xA;    &lt;codes.Code&gt;: 2&#xA;to equal&#xA;    &lt;codes.Code&gt;: 4" type="failed"></failure>
    </testcase>
    <testcase name="[It] [k8s.io] Streaming runtime should support attach" classname="CRI validation" status="timedout" time="60"></testcase>
    <testcase name="[It] [k8s.io] AppArmor runtime should support apparmor field" classname="CRI validation" status="skipped" time="0">
      <skipped message="skipped - AppArmor is disabled on this host"></skipped>
    </testcase>
    <testcase name="[It] [k8s.io] Image Manager public image with digest should be pulled and removed [Conformance] [Serial]" classname="CRI validation" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[AfterSuite]" classname="CRI validation" status="failed" time="0">
      <failure message="cleanup failed" type="failed"></failure>
    </testcase>
  </testsuite>
</testsuites>`

func TestParseJUnit(t *testing.T) {
	s, err := parseJUnit(strings.NewReader(junit))
	if err != nil {
		t.Fatal(err)
	}
	if s.Passed != 1 || s.Failed != 4 || s.Skipped != 2 || len(s.Specs) != 7 {
		t.Fatalf("summary %+v", s)
	}
	reasons := map[string]string{}
	for _, sp := range s.Specs {
		reasons[sp.Name] = sp.Status + ": " + sp.Reason
	}
	for name, want := range map[string]string{
		"[k8s.io] Idempotence StopPodSandbox should not return an error if not found": "failed: Unexpected error: rpc error: code = NotFound desc = not found",
		"[k8s.io] Streaming runtime should support attach":                            "failed: timedout",
		"[k8s.io] AppArmor runtime should support apparmor field":                     "skipped: AppArmor is disabled on this host",
		"[AfterSuite]": "failed: cleanup failed",
	} {
		if reasons[name] != want {
			t.Errorf("%s: %q, want %q", name, reasons[name], want)
		}
	}

	s.explainSkips(skipReason)
	var out bytes.Buffer
	s.write(&out)
	for _, want := range []string{
		"critest: 7 specs: 1 passed, 4 failed, 2 skipped\n",
		"FAILED  [k8s.io] Idempotence StopPodSandbox",
		"skipped offline: pulls gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Index(out.String(), "FAILED") > strings.Index(out.String(), "SKIPPED") {
		t.Error("failures are not listed first")
	}
}

func TestParseJUnitRejectsGarbage(t *testing.T) {
	if _, err := parseJUnit(strings.NewReader("Ginkgo ran 0 suites")); err == nil {
		t.Error("parsed a non-XML report")
	}
}

func TestConfigFiles(t *testing.T) {
	m := mirrorsConfig("127.0.0.1:5000")
	for _, reg := range upstreamRegistries {
		if !strings.Contains(m, "[registry.\""+reg+"\"]\nmirrors = [\"http://127.0.0.1:5000\"]\nmirrors_only = true\n") {
			t.Errorf("mirrors config lacks %s:\n%s", reg, m)
		}
	}
	if got := testImagesFile("127.0.0.1:5000"); got != "defaultTestContainerImage: 127.0.0.1:5000/e2e-test-images/busybox:1.29-2\n"+
		"webServerTestImage: 127.0.0.1:5000/e2e-test-images/nginx:1.14-2\n" {
		t.Errorf("test images file:\n%s", got)
	}
}
