package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
	"github.com/nodekit-dev/nodekit/cri/cni"
	"github.com/nodekit-dev/nodekit/cri/podns"
)

// detachTimeout bounds a CNI DEL that runs without a caller's deadline (undoing a
// failed RunPodSandbox, removing a half-created sandbox).
const detachTimeout = time.Minute

// initNetwork prepares pod networking with CNI. Nothing is read yet: the network
// configuration is loaded when Status or RunPodSandbox first needs it and again
// whenever the configuration directory changes. libcni's result cache lives under
// the state directory, beside the records that refer to it.
func (s *Server) initNetwork() error {
	s.network = cni.New(cni.Options{
		ConfDir:  s.opts.CNIConfDir,
		BinDirs:  s.opts.CNIBinDirs,
		CacheDir: filepath.Join(s.opts.State, "cni"),
	})
	return nil
}

// networkCondition is the NetworkReady condition: true once a configuration loads.
func (s *Server) networkCondition() *runtime.RuntimeCondition {
	if _, err := s.network.Config(); err != nil {
		return &runtime.RuntimeCondition{
			Type:    runtime.NetworkReady,
			Status:  false,
			Reason:  "NetworkPluginNotReady",
			Message: err.Error(),
		}
	}
	return &runtime.RuntimeCondition{Type: runtime.NetworkReady, Status: true}
}

// networkInfo is what verbose Status reports about networking.
func (s *Server) networkInfo() map[string]any {
	info := map[string]any{"cniConfDir": s.network.ConfDir()}
	if cfg, err := s.network.Config(); err == nil {
		info["cniConfig"] = cfg
	} else {
		info["cniError"] = err.Error()
	}
	return info
}

// networkJournal is where a sandbox's CNI attachment is kept from just before ADD
// until DEL succeeded: its presence means the pod may still hold network
// resources, and it holds everything DEL needs, even after a crash in the middle
// of RunPodSandbox (when no record exists yet) or a change of configuration.
func (p paths) networkJournal(id string) string {
	return filepath.Join(p.sandboxState(id), "network.json")
}

// attachNetwork connects the pod's pinned network namespace to the CNI network
// (ADD) and records the attachment in rec. It registers the DEL in undo first, so a
// failure here or later in RunPodSandbox leaves no address, interface or rule.
func (s *Server) attachNetwork(ctx context.Context, rec *sandboxRecord, undo *cleanups) error {
	cfg := rec.Config
	m := cfg.GetMetadata()
	att, err := s.network.Prepare(cni.Pod{
		ID:        rec.ID,
		NetNS:     rec.Namespace[string(podns.Net)],
		Namespace: m.GetNamespace(),
		Name:      m.GetName(),
		UID:       m.GetUid(),
		Ports:     portMappings(cfg.GetPortMappings()),
	})
	if errors.Is(err, cni.ErrNotReady) {
		return status.Errorf(codes.FailedPrecondition, "pod network is not ready (CNI configuration directory %s): %v", s.network.ConfDir(), err)
	}
	if err != nil {
		return status.Errorf(codes.Internal, "pod network: %v", err)
	}
	if err := atomicfile.ReplaceJSON(s.paths.networkJournal(rec.ID), att, 0o600); err != nil {
		return status.Errorf(codes.Internal, "pod network: save attachment: %v", err)
	}
	s.attached.Store(rec.ID, true)
	undo.add(func() error { return s.detachNetwork(context.Background(), rec.ID) })
	if err := s.network.Attach(ctx, att); err != nil {
		return status.Errorf(codes.Internal, "set up the network of pod sandbox %s: %v", rec.ID, err)
	}
	rec.Network = att
	s.log.Debug("pod network attached", "sandbox", rec.ID, "network", att.Network, "ips", att.IPs)
	return nil
}

// detachNetwork runs CNI DEL for the sandbox's attachment if it has one, then
// forgets it. It is idempotent; DEL itself tolerates resources that are already
// gone, including the network namespace.
func (s *Server) detachNetwork(ctx context.Context, id string) error {
	journal := s.paths.networkJournal(id)
	var att cni.Attachment
	err := atomicfile.ReadJSON(journal, &att)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read network attachment: %w", err)
	}
	// A DEL, once begun, is finished even if the caller goes away (a kubelet
	// that dies mid-call): a plugin killed half-way may have removed the
	// pod's interface but not its masquerading rules, which the next DEL can
	// no longer find.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachTimeout)
	defer cancel()
	if err := s.network.Detach(ctx, &att); err != nil {
		// It may have done part of its work all the same: the retry sweeps.
		s.attached.Delete(id)
		s.log.Error("CNI DEL failed; the pod keeps its network until a retry succeeds", "sandbox", id, "network", att.Network, "err", err)
		return err
	}
	if _, ours := s.attached.Load(id); !ours {
		// Attached by an earlier run of the shim, or an earlier DEL failed: a
		// crash or a failure may have cut an ADD or a DEL short, leaving rules
		// the DEL above could not find.
		if err := s.network.Sweep(ctx, &att); err != nil {
			s.log.Error("sweep the masquerading rules of a pod", "sandbox", id, "network", att.Network, "err", err)
			return err
		}
	}
	s.attached.Delete(id)
	if err := os.Remove(journal); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("forget network attachment: %w", err)
	}
	s.log.Debug("pod network detached", "sandbox", id, "network", att.Network)
	return nil
}

// networkStatus reports the pod's addresses while it is ready; a stopped pod has
// none (they may already belong to another pod).
func networkStatus(rec *sandboxRecord) *runtime.PodSandboxNetworkStatus {
	st := &runtime.PodSandboxNetworkStatus{}
	if rec.Network == nil || rec.State != runtime.PodSandboxState_SANDBOX_READY || len(rec.Network.IPs) == 0 {
		return st
	}
	st.Ip = rec.Network.IPs[0]
	for _, ip := range rec.Network.IPs[1:] {
		st.AdditionalIps = append(st.AdditionalIps, &runtime.PodIP{Ip: ip})
	}
	return st
}

// portMappings turns the pod's port mappings into the portmap plugin's
// portMappings capability; only mappings with a host port need a rule.
func portMappings(in []*runtime.PortMapping) []cni.PortMapping {
	var out []cni.PortMapping
	for _, p := range in {
		if p.GetHostPort() <= 0 {
			continue
		}
		out = append(out, cni.PortMapping{
			HostPort:      p.GetHostPort(),
			ContainerPort: p.GetContainerPort(),
			Protocol:      strings.ToLower(p.GetProtocol().String()),
			HostIP:        p.GetHostIp(),
		})
	}
	return out
}
