// Package interrupt turns the signals that ask a benchmark to stop (SIGINT,
// SIGTERM, SIGHUP) into the cancellation of its context, so that it stops
// measuring and cleans up. Cleanup always runs to the end: further signals do
// not abort it, they only say that it is in progress.
package interrupt
