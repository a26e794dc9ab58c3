// Package shipbench is the node workload the shipper benchmarks run on
// (cmd/sluice's BenchmarkShipperDrain and BenchmarkShipperLive20k): the
// standard workload node log shippers are compared on, so that the
// shipper's figures can be set beside other shippers' measured the same way.
//
// # The workload
//
// A Generator writes the container logs of one Kubernetes node in the
// kubelet's layout (internal/nodelog): CRI lines in
// var/log/pods/<ns>_<pod>_<uid>/<container>/0.log, with the
// var/log/containers/*.log symlinks a shipper tails. Standard() is the
// workload itself:
//
//   - 40 containers (one or two per pod, over eight namespaces), their
//     volumes skewed: container i gets a share proportional to 1/(i+1);
//   - 2,000,000 messages; their sizes lognormal (sigma 0.6) with a mean of
//     300 bytes of content, so about 380 bytes per CRI line with the
//     timestamp, stream and tag (the whole drain is about 760 MB);
//   - 45 % JSON application logs, the rest plain text in three styles
//     (klog, an HTTP access log, Java logging), 10 % on stderr;
//   - 0.05 % of messages longer than 16 KiB (up to 64 KiB), written as the
//     container runtime writes them: 16 KiB "P" (partial) pieces and a
//     last "F" piece.
//
// Every message carries a unique token seq=<n>, n counting from 0 in
// writing order, at the start of a word. A long message is
// "seq=<n> big=1 len=<bytes> ... eob=<n>", so a reader can tell that its
// pieces were joined whole. Check counts what a shipper delivered against
// these tokens: missing, duplicated and merged lines, broken long lines.
//
// The generator is deterministic: the same Workload (seed included) gives
// the same messages in the same files. It writes in one of two modes:
// WriteAll writes everything as fast as it can (timestamps spaced as if
// written at 20,000 lines/s), for a drain; Live appends at a given rate
// with wall-clock timestamps, for a steady-state run.
//
// # The broker
//
// RunBroker serves a one-broker kfake cluster on a loopback port; the
// benchmarks run it in a process of its own (the test binary started again
// in a helper mode), so that neither its CPU time nor its memory is counted
// as the shipper's (internal/apptest.ReadProc reads a process's CPU time and
// resident memory from /proc).
package shipbench
