package cri

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
	"github.com/nodekit-dev/nodekit/cri/cni"
)

// A DEL, once begun, is finished even if its caller goes away (a kubelet that
// dies in StopPodSandbox): a plugin killed half-way may remove the pod's
// interface and not its masquerading rules, which no later DEL can find. (The
// agent's crash rounds on a separate nodekit-cri left such rules.)
func TestDetachNotCutShortByTheCaller(t *testing.T) {
	s := recordsServer(t)
	bin := t.TempDir()
	done := filepath.Join(bin, "del-done")
	plugin := "#!/bin/sh\ncat > /dev/null\ncase \"$CNI_COMMAND\" in\n" +
		"DEL) sleep 0.5; touch " + done + " ;;\n" +
		"VERSION) echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}' ;;\n" +
		"esac\n"
	if err := os.WriteFile(filepath.Join(bin, "nkslow"), []byte(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	s.network = cni.New(cni.Options{ConfDir: t.TempDir(), BinDirs: []string{bin}, CacheDir: t.TempDir()})
	att := cni.Attachment{Network: "slow", ContainerID: "sb1", IfName: "eth0", NetNS: filepath.Join(bin, "gone"),
		Config: []byte(`{"cniVersion":"1.0.0","name":"slow","plugins":[{"type":"nkslow"}]}`)}
	if err := os.MkdirAll(s.paths.sandboxState("sb1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.ReplaceJSON(s.paths.networkJournal("sb1"), att, 0o600); err != nil {
		t.Fatal(err)
	}
	s.attached.Store("sb1", true)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel) // the caller dies while the plugin runs
	if err := s.detachNetwork(ctx, "sb1"); err != nil {
		t.Fatalf("DEL whose caller went away: %v", err)
	}
	if _, err := os.Stat(done); err != nil {
		t.Fatalf("the plugin's DEL did not run to its end: %v", err)
	}
	if _, err := os.Stat(s.paths.networkJournal("sb1")); !os.IsNotExist(err) {
		t.Fatalf("the attachment was not forgotten: %v", err)
	}
}
