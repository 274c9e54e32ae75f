// Package numberedlog reads the CRI log of a test container that prints
// numbered lines to stdout ("line 1", "line 2", ...) and reports the gaps: the
// crash tests' measure of log lines lost. Records are parsed with crilog and
// partial records joined; a record still being written (no newline yet) is
// left for the next read.
package numberedlog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/nodekit-dev/nodekit/cri/crilog"
)

// Gap is a numbered line that did not follow the one before it.
type Gap struct {
	After, Got int
}

// Log is what Read found.
type Log struct {
	// Last is the highest line number seen.
	Last int
	// Gaps lists the lines that did not follow the line before them.
	Gaps []Gap
	// Malformed counts the complete records crilog could not parse.
	Malformed int
}

// Lost is the number of lines missing: those skipped by a gap and, when
// want > 0, those after Last up to want.
func (l Log) Lost(want int) int {
	n := 0
	for _, g := range l.Gaps {
		if g.Got > g.After {
			n += g.Got - g.After - 1
		}
	}
	if want > 0 && l.Last < want {
		n += want - l.Last
	}
	return n
}

// Read reads the log at path.
func Read(path string) (Log, error) {
	var l Log
	f, err := os.Open(path)
	if err != nil {
		return l, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var pending []byte // stdout content of partial records
	for {
		rec, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return l, nil // a record without its newline is still being written
		}
		if err != nil {
			return l, fmt.Errorf("read %s: %w", path, err)
		}
		e, err := crilog.ParseLine(rec)
		if err != nil {
			l.Malformed++
			continue
		}
		if e.Stream != crilog.Stdout {
			continue
		}
		if e.Partial {
			pending = append(pending, e.Content...)
			continue
		}
		line := append(pending, e.Content...)
		pending = nil
		num, ok := bytes.CutPrefix(line, []byte("line "))
		if !ok {
			continue
		}
		n, err := strconv.Atoi(string(num))
		if err != nil {
			continue
		}
		if n != l.Last+1 {
			l.Gaps = append(l.Gaps, Gap{After: l.Last, Got: n})
		}
		l.Last = max(l.Last, n)
	}
}
