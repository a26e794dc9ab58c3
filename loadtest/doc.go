// Package loadtest measures the real pipeline end to end: simulated nodes
// write kubelet-layout container logs at a configured rate, one shipper
// process per node, router and indexer processes (with replicas) carry the
// lines through Kafka into Elasticsearch, and at the end every line is
// accounted for: found exactly once in Elasticsearch, or in a dead-letter
// topic with a reason. It reports throughput, end-to-end latency and each
// process's CPU time and peak memory, and can inject faults (SIGKILL of a
// stage, a Kafka outage, Elasticsearch errors, bursts).
//
// Scenarios are small YAML files in loadtest/scenarios; `sluice loadtest`
// runs one.
package loadtest
