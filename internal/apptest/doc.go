// Package apptest runs the sluice binary as child processes, for the
// process tests of cmd/sluice (kill -9, descriptor limits, memory bombs,
// benchmarks) and for the load test (loadtest, which runs outside `go
// test` too, as `sluice loadtest`): one harness for both.
//
// Build and Binary build the binary as the production image does (-tags
// nodev), Binary once per test binary (Main removes it); DevBinary is the
// full build, for tests of sluice dev. A Process is a
// binary started with arguments and environment, its output kept in memory
// or appended to a log file; it can be killed with SIGKILL and started
// again (its lives add up), stopped with SIGTERM and a timeout, waited for
// until its /readyz answers; it reports its CPU time, its peak resident
// memory (VmHWM from /proc: ReadProc), its starts and kills, and the exits
// nobody asked for. Start, Sluice and Terminate are the forms for tests:
// the process is killed at the end of the test, and its output logged if
// the test failed.
//
// It waits with internal/testwait and imports no stage. The production
// build links none of it.
package apptest
