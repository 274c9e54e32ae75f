package monitor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// syncMessage is the one line a monitor writes on its sync pipe (fd 3): the
// container pid after a successful start, or why the start failed.
type syncMessage struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// errNoReport means the monitor closed the sync pipe without a message.
var errNoReport = errors.New("monitor exited without reporting")

func writeSync(w io.Writer, m syncMessage) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// readSync decodes what a monitor wrote on its sync pipe: the container pid, or the
// start error it reported.
func readSync(data []byte) (int, error) {
	line, _, _ := bytes.Cut(data, []byte{'\n'})
	if len(bytes.TrimSpace(line)) == 0 {
		return 0, errNoReport
	}
	var m syncMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return 0, fmt.Errorf("decode monitor sync message %q: %w", line, err)
	}
	switch {
	case m.Error != "":
		return 0, errors.New(m.Error)
	case m.Pid <= 0:
		return 0, fmt.Errorf("monitor sync message %q: no pid", line)
	}
	return m.Pid, nil
}

// runtimeMessage extracts what a failed runtime command said from its stderr: the
// msg of logrus-formatted error lines (runc's `time=... level=error msg="..."`), or
// else the whole output, trimmed.
func runtimeMessage(stderr []byte) string {
	var msgs []string
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "level=error") && !strings.Contains(line, "level=fatal") {
			continue
		}
		_, msg, ok := strings.Cut(line, " msg=")
		if !ok {
			continue
		}
		if q, err := strconv.QuotedPrefix(msg); err == nil {
			msg, _ = strconv.Unquote(q)
		} else {
			msg, _, _ = strings.Cut(msg, " ")
		}
		msgs = append(msgs, msg)
	}
	if len(msgs) > 0 {
		return strings.Join(msgs, "; ")
	}
	return strings.TrimSpace(string(stderr))
}
