package podruntime

import (
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/agent/status"
)

// TerminationMessage returns the message an exited container left, as the
// kubelet puts it in the container status: the end (4 KiB) of the file mounted
// at its terminationMessagePath, or, with FallbackToLogsOnError when the
// container failed and the file is empty, the last 80 lines (2 KiB) of its
// log (status.ReadTerminationMessage). It is read once per container and
// remembered until the container is removed; "" for a container that has not
// exited. The signature fits status.GenerateOptions.TerminationMessage.
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
	msg = status.ReadTerminationMessage(c)
	m.mu.Lock()
	m.messages[c.GetId()] = msg
	m.mu.Unlock()
	return msg
}
