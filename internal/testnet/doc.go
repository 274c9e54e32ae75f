// Package testnet gives an integration test a CNI network of its own, independent
// of /etc/cni/net.d: a configuration directory, a bridge nk<random>, a random free
// 10.x.y.0/24 and a host-local data directory nobody else uses, so tests and test
// packages running in parallel never share addresses or rules.
//
// The configuration is the one `make setup` installs (bridge, host-local,
// portmap, loopback), with the plugins from /usr/lib/cni or /opt/cni/bin. At the
// end of the test the network must hold nothing any more (no host-local
// reservation, no interface on the bridge, no NAT rule), or the test fails; then
// the bridge, any NAT rule a failed test left and, if the test created them,
// portmap's shared CNI-HOSTPORT-* chains are removed.
package testnet
