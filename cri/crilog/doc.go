// Package crilog writes and parses the container log format of the Kubernetes
// Container Runtime Interface (CRI):
//
//	<timestamp> <stream> <tag> <content>\n
//
// timestamp is UTC with nine fractional digits (2006-01-02T15:04:05.000000000Z,
// RFC 3339 compatible), stream is "stdout" or "stderr", tag is "F" for a record that
// ends a line of output or "P" for a partial record whose line continues in the next
// record of the same stream. content is the output verbatim without its newline (a
// "\r" before the newline is kept as content, as the kubelet reads content verbatim).
//
// A Sink is the shared log file; each stream writes through its own Writer, which
// splits output into records (lines longer than the maximum become P records
// followed by an F record) and hands each record to the Sink in a single write under
// a lock, so records of two streams never interleave. ParseLine reads a record back.
package crilog
