package status

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

// Container annotations (the kubelet's) that say where a container leaves its
// termination message and what to do when it leaves none.
const (
	TerminationMessagePathAnnotation   = "io.kubernetes.container.terminationMessagePath"
	TerminationMessagePolicyAnnotation = "io.kubernetes.container.terminationMessagePolicy"
)

// Limits of termination messages (the kubelet's).
const (
	maxTerminationMessageBytes = 4 * 1024  // read from the message file
	maxTerminationLogLines     = 80        // read from the log on FallbackToLogsOnError
	maxTerminationLogBytes     = 2 * 1024  // ditto
	maxPodTerminationMessage   = 12 * 1024 // all containers of a pod together
	logTailWindow              = 64 * 1024 // how much of the log end is scanned
)

// ReadTerminationMessage returns the message an exited container left: the end
// (at most 4 KiB) of the host file mounted at the path its
// io.kubernetes.container.terminationMessagePath annotation names, or, under the
// FallbackToLogsOnError policy when the container failed and left no message,
// the last lines of its CRI log (at most 80 lines, 2 KiB). It returns "" for a
// container that is not exited.
func ReadTerminationMessage(c *runtimeapi.ContainerStatus) string {
	if c.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
		return ""
	}
	path := c.GetAnnotations()[TerminationMessagePathAnnotation]
	fallback := c.GetAnnotations()[TerminationMessagePolicyAnnotation] == string(v1.TerminationMessageFallbackToLogsOnError) &&
		c.GetExitCode() != 0 && c.GetReason() != "ContainerCannotRun"

	msg, checkLogs := fileMessage(c, path, fallback)
	if checkLogs && c.GetLogPath() != "" {
		msg = logTail(c.GetLogPath())
	}
	return msg
}

func fileMessage(c *runtimeapi.ContainerStatus, path string, fallback bool) (string, bool) {
	if path == "" {
		return "", fallback
	}
	for _, m := range c.GetMounts() {
		if m.GetContainerPath() != path {
			continue
		}
		data, err := readTail(m.GetHostPath(), maxTerminationMessageBytes)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", fallback
			}
			return fmt.Sprintf("Error on reading termination log %s: %v", m.GetHostPath(), err), false
		}
		return string(data), fallback && len(data) == 0
	}
	return "", fallback
}

// readTail returns at most max bytes from the end of the file.
func readTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	off := int64(0)
	if fi.Size() > max {
		off = fi.Size() - max
	}
	data, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// logTail returns the content of the last lines of a CRI log file
// ("<time> <stream> <P|F> <content>" lines), partial lines joined.
func logTail(path string) string {
	data, err := readTail(path, logTailWindow)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ""
		}
		return fmt.Sprintf("Error on reading termination message from logs: %v", err)
	}
	lines := bytes.Split(data, []byte("\n"))
	if len(data) >= logTailWindow && len(lines) > 0 {
		lines = lines[1:] // the first line may be cut
	}
	var out [][]byte
	var partial []byte
	for _, l := range lines {
		fields := bytes.SplitN(l, []byte(" "), 4)
		if len(fields) < 3 {
			continue
		}
		content := []byte{}
		if len(fields) == 4 {
			content = fields[3]
		}
		partial = append(partial, content...)
		if string(fields[2]) == "P" {
			continue
		}
		out = append(out, append(partial, '\n'))
		partial = nil
	}
	if len(out) > maxTerminationLogLines {
		out = out[len(out)-maxTerminationLogLines:]
	}
	msg := bytes.Join(out, nil)
	if len(msg) > maxTerminationLogBytes {
		msg = msg[:maxTerminationLogBytes]
	}
	return string(msg)
}
