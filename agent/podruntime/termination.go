package podruntime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Termination message limits (the kubelet's).
const (
	maxTerminationMessage = 4 * 1024 // bytes read from the message file
	maxLogMessageLines    = 80       // FallbackToLogsOnError: last lines of the log
	maxLogMessageBytes    = 2 * 1024 // ... at most this many bytes
	logTailWindow         = 64 * 1024
)

// TerminationMessage returns the message an exited container left, as the
// kubelet puts it in the container status: the end (4 KiB) of the file mounted
// at its terminationMessagePath, or, with FallbackToLogsOnError when the
// container failed and the file is empty, the last 80 lines (2 KiB) of its
// log. It is read once per container and remembered until the container is
// removed; "" for a container that has not exited. The signature fits
// status.GenerateOptions.TerminationMessage.
func (m *Manager) TerminationMessage(c *runtimeapi.ContainerStatus) string {
	if c.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
		return ""
	}
	m.mu.Lock()
	msg, ok := m.messages[c.GetId()]
	m.mu.Unlock()
	if ok {
		return msg
	}
	msg = readTerminationMessage(c)
	m.mu.Lock()
	m.messages[c.GetId()] = msg
	m.mu.Unlock()
	return msg
}

func readTerminationMessage(c *runtimeapi.ContainerStatus) string {
	a := c.GetAnnotations()
	path := a[AnnotationTerminationMessagePath]
	fallback := a[AnnotationTerminationMessagePolicy] == string(v1.TerminationMessageFallbackToLogsOnError) &&
		c.GetExitCode() != 0 && c.GetReason() != "ContainerCannotRun"
	if path != "" {
		for _, mnt := range c.GetMounts() {
			if mnt.GetContainerPath() != path {
				continue
			}
			data, err := readTail(mnt.GetHostPath(), maxTerminationMessage)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Sprintf("Error on reading termination log %s: %v", mnt.GetHostPath(), err)
			}
			if len(data) > 0 || !fallback {
				return string(data)
			}
			break
		}
	}
	if !fallback || c.GetLogPath() == "" {
		return ""
	}
	return logTail(c.GetLogPath())
}

// readTail returns at most n bytes from the end of a file.
func readTail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(0, fi.Size()-n)
	return io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
}

// logTail returns the content of the last lines of a CRI log file
// ("<time> <stream> <P|F> <content>"; partial lines joined), at most
// maxLogMessageLines lines and maxLogMessageBytes bytes.
func logTail(path string) string {
	data, err := readTail(path, logTailWindow)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ""
		}
		return fmt.Sprintf("Error on reading termination message from logs: %v", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() > logTailWindow {
		// The window starts mid-line: drop the fragment.
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	var lines []string
	var cur []byte
	for _, raw := range bytes.Split(data, []byte("\n")) {
		if len(raw) == 0 {
			continue
		}
		f := bytes.SplitN(raw, []byte(" "), 4)
		if len(f) < 3 {
			continue
		}
		content := []byte{}
		if len(f) == 4 {
			content = f[3]
		}
		cur = append(cur, content...)
		if tag := f[2]; len(tag) > 0 && tag[0] == 'P' {
			continue
		}
		lines = append(lines, string(cur)+"\n")
		cur = nil
	}
	if len(lines) > maxLogMessageLines {
		lines = lines[len(lines)-maxLogMessageLines:]
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
	}
	out := b.Bytes()
	if len(out) > maxLogMessageBytes {
		out = out[len(out)-maxLogMessageBytes:]
	}
	return string(out)
}
