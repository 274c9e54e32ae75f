package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// ListPods fetches /pods from an agent's LocalSocket.
func ListPods(ctx context.Context, socket string) (*v1.PodList, error) {
	var l v1.PodList
	if err := getLocal(ctx, socket, "/pods", &l); err != nil {
		return nil, fmt.Errorf("list pods from %s: %w", socket, err)
	}
	return &l, nil
}

// GetNode asks the agent serving the local socket for its node.
func GetNode(ctx context.Context, socket string) (*v1.Node, error) {
	var n v1.Node
	if err := getLocal(ctx, socket, "/node", &n); err != nil {
		return nil, fmt.Errorf("get node from %s: %w", socket, err)
	}
	return &n, nil
}

// getLocal GETs path from the local socket and decodes the JSON answer into out.
func getLocal(ctx context.Context, socket, path string, out any) error {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}
