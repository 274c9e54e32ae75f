package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// junitSuites is the part of ginkgo's JUnit report the runner reads.
type junitSuites struct {
	Suites []struct {
		Cases []junitCase `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitCase struct {
	Name    string `xml:"name,attr"`
	Status  string `xml:"status,attr"`
	Time    string `xml:"time,attr"`
	Failure *struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	Error *struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	} `xml:"error"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
}

// spec is one spec's outcome.
type spec struct {
	Name   string // without ginkgo's "[It] " prefix
	Status string // passed, failed, skipped
	Reason string // first line of the failure or skip message
}

// summary counts a run's specs.
type summary struct {
	Specs                   []spec
	Passed, Failed, Skipped int
}

// parseJUnit reads ginkgo's JUnit report. Only specs ([It] nodes) count; a failed
// suite node (BeforeSuite, AfterSuite...) counts as a failure.
func parseJUnit(r io.Reader) (summary, error) {
	var js junitSuites
	if err := xml.NewDecoder(r).Decode(&js); err != nil {
		return summary{}, fmt.Errorf("JUnit report: %w", err)
	}
	var s summary
	for _, suite := range js.Suites {
		for _, c := range suite.Cases {
			sp := spec{Name: strings.TrimPrefix(c.Name, "[It] "), Status: c.Status}
			isSpec := strings.HasPrefix(c.Name, "[It] ")
			switch {
			case c.Failure != nil:
				sp.Status, sp.Reason = "failed", firstLine(c.Failure.Message, c.Failure.Text)
			case c.Error != nil:
				sp.Status, sp.Reason = "failed", firstLine(c.Error.Message, c.Error.Text)
			case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
				sp.Status = "skipped"
				if c.Skipped != nil {
					sp.Reason = firstLine(strings.TrimPrefix(c.Skipped.Message, "skipped - "), "")
				}
			case c.Status == "passed" || c.Status == "":
				sp.Status = "passed"
			default: // interrupted, timedout, panicked, aborted
				sp.Status, sp.Reason = "failed", c.Status
			}
			if !isSpec && sp.Status != "failed" {
				continue
			}
			s.Specs = append(s.Specs, sp)
			switch sp.Status {
			case "passed":
				s.Passed++
			case "failed":
				s.Failed++
			default:
				s.Skipped++
			}
		}
	}
	slices.SortStableFunc(s.Specs, func(a, b spec) int { return strings.Compare(a.Name, b.Name) })
	return s, nil
}

// firstLine is the first non-empty line of msg, else of text. A line ending in ":"
// (gomega's "Unexpected error:") gets the next line that is not a type dump appended;
// gomega's "Expected" gets the next four (the values and the expectation).
// At most 400 bytes.
func firstLine(msg, text string) string {
	for _, s := range []string{msg, text} {
		var lines []string
		for l := range strings.SplitSeq(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 {
			continue
		}
		r := lines[0]
		if r == "Expected" { // gomega: Expected / <type>: value / to ... / <type>: value
			r = strings.Join(lines[:min(len(lines), 5)], " ")
		} else if strings.HasSuffix(r, ":") {
			for _, l := range lines[1:] {
				if !strings.HasPrefix(l, "<") && !strings.HasPrefix(l, "{") {
					r += " " + l
					break
				}
			}
		}
		if len(r) > 400 {
			r = r[:400] + "…"
		}
		return r
	}
	return ""
}

// explainSkips replaces the bare "skipped" of specs skipped by -ginkgo.skip with
// why(name), when it says something.
func (s summary) explainSkips(why func(name string) string) {
	for i, sp := range s.Specs {
		if sp.Status == "skipped" && (sp.Reason == "" || sp.Reason == "skipped") {
			if r := why(sp.Name); r != "" {
				s.Specs[i].Reason = r
			}
		}
	}
}

// write prints the counts and every failed and skipped spec with its reason.
func (s summary) write(w io.Writer) {
	fmt.Fprintf(w, "critest: %d specs: %d passed, %d failed, %d skipped\n", len(s.Specs), s.Passed, s.Failed, s.Skipped)
	for _, status := range []string{"failed", "skipped"} {
		for _, sp := range s.Specs {
			if sp.Status == status {
				fmt.Fprintf(w, "  %-7s %s\n          %s\n", strings.ToUpper(status), sp.Name, sp.Reason)
			}
		}
	}
}

func readSummary(path string) (summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return summary{}, err
	}
	defer f.Close()
	return parseJUnit(f)
}
