package cri

// initNetwork prepares pod networking (CNI). Placeholder until CNI lands.
func (s *Server) initNetwork() error { return nil }
