package cri

import (
	"reflect"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/cni"
)

func TestPortMappings(t *testing.T) {
	tests := []struct {
		name string
		in   []*runtime.PortMapping
		want []cni.PortMapping
	}{
		{"none", nil, nil},
		{"container port only: no rule", []*runtime.PortMapping{{ContainerPort: 80}}, nil},
		{
			"tcp, udp, sctp, host ip",
			[]*runtime.PortMapping{
				{Protocol: runtime.Protocol_TCP, ContainerPort: 80, HostPort: 8080},
				{Protocol: runtime.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "127.0.0.1"},
				{Protocol: runtime.Protocol_SCTP, ContainerPort: 9, HostPort: 9999},
			},
			[]cni.PortMapping{
				{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
				{HostPort: 5353, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1"},
				{HostPort: 9999, ContainerPort: 9, Protocol: "sctp"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := portMappings(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("portMappings = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNetworkStatus(t *testing.T) {
	ready, notReady := runtime.PodSandboxState_SANDBOX_READY, runtime.PodSandboxState_SANDBOX_NOTREADY
	tests := []struct {
		name       string
		rec        sandboxRecord
		ip         string
		additional []string
	}{
		{"host network", sandboxRecord{State: ready}, "", nil},
		{"one address", sandboxRecord{State: ready, Network: &cni.Attachment{IPs: []string{"10.88.0.5"}}}, "10.88.0.5", nil},
		{"dual stack", sandboxRecord{State: ready, Network: &cni.Attachment{IPs: []string{"10.88.0.5", "fd00::5"}}}, "10.88.0.5", []string{"fd00::5"}},
		{"stopped: addresses may be someone else's", sandboxRecord{State: notReady, Network: &cni.Attachment{IPs: []string{"10.88.0.5"}}}, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := networkStatus(&tc.rec)
			var additional []string
			for _, ip := range st.GetAdditionalIps() {
				additional = append(additional, ip.GetIp())
			}
			if st.GetIp() != tc.ip || !reflect.DeepEqual(additional, tc.additional) {
				t.Fatalf("network status ip %q additional %v, want %q %v", st.GetIp(), additional, tc.ip, tc.additional)
			}
		})
	}
}
