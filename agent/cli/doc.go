// Package cli is nodekit-kubelet's command line: the agent run with the
// kubelet's flags, and the kubectl verbs a user of a standalone node needs,
// asked of the agent running on this machine instead of an API server.
//
//	nodekit-kubelet [flags]                                run the agent
//	nodekit-kubelet get pods [NAME] [-o wide|yaml|json|name] [-w]
//	nodekit-kubelet get node [-o wide|yaml|json]
//	nodekit-kubelet describe pod NAME                      containers, states, probes, volumes, events, timeline
//	nodekit-kubelet logs POD [-c C] [-f] [--previous] [--tail N] [--timestamps]
//	nodekit-kubelet exec POD [-c C] [-i] [-t] -- CMD...
//	nodekit-kubelet top pods [NAME]                        CPU and memory from the Summary API
//
// The verbs read the agent's local API: the unix socket <root-dir>/kubelet.sock
// (agent.LocalSocket, mode 0600, so root only), which serves the kubelet's
// HTTP API without TLS or authentication, plus /node and the pods' timelines
// (/debug/pods/{namespace}/{name}/timeline). Output formats, column names and
// error messages are kubectl's (`Error from server (NotFound): pods "x" not
// found`, exit code 1; exec exits with the command's exit code). Without -n a
// pod is looked up in every namespace, as names on one node rarely clash.
//
// NewCommand builds the command tree (spf13/cobra, as kubectl and the kubelet);
// the daemon's flags are Go flag sets, parsed with spf13/pflag so that they
// read as the kubelet's (--flag value, --flag=value) and shown in --help by
// group. Main runs it and turns errors into kubectl's messages and exit codes.
package cli
