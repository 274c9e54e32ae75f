// Package podcontainer answers questions about the containers a pod spec
// declares (app, init and ephemeral alike), shared by the agent's API server
// and its command line (both check a container name before reading logs).
package podcontainer
