// Package testpki is a certificate authority for tests: it signs client
// certificates the way the cluster's CA (the controller manager's signer)
// does, for the tests of the agent's API server (client certificate
// authentication) and of its client certificate manager (bootstrap, rotation,
// expired and mismatched pairs). Keys are ECDSA P-256.
package testpki
