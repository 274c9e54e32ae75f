package podnet

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteBridgeConfList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "10-nktest.conflist")
	_, subnet, _ := net.ParseCIDR("10.70.8.0/22")
	if err := WriteBridgeConfList(path, "nktest1", subnet, "/tmp/nktest/ipam"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{
  "cniVersion": "1.0.0",
  "name": "nktest1",
  "plugins": [
    {
      "bridge": "nktest1",
      "ipam": {
        "dataDir": "/tmp/nktest/ipam",
        "ranges": [
          [
            {
              "subnet": "10.70.8.0/22"
            }
          ]
        ],
        "type": "host-local"
      },
      "isGateway": true,
      "type": "bridge"
    },
    {
      "type": "loopback"
    }
  ]
}`
	if string(got) != want {
		t.Errorf("conflist:\n%s\nwant:\n%s", got, want)
	}
}

func TestFreeSubnet(t *testing.T) {
	sub, err := FreeSubnet()
	if err != nil {
		t.Fatal(err)
	}
	_, pool, _ := net.ParseCIDR("10.64.0.0/10")
	if ones, _ := sub.Mask.Size(); ones != 22 || !pool.Contains(sub.IP) {
		t.Errorf("FreeSubnet = %s, want a /22 in %s", sub, pool)
	}
}
