package cri

// initStreaming starts the streaming server for exec, attach and port-forward.
// Placeholder until streaming lands.
func (s *Server) initStreaming() error { return nil }

func (s *Server) closeStreaming() {}
