// Package devstack runs the whole pipeline in one process for development:
// `sluice dev` (make run) is its command line, and the load test starts its
// embedded servers from here.
//
// Start (or Run) wires an embedded Kafka (kfake, its log under the dev
// directory) and the embedded Elasticsearch-compatible store, unless
// SLUICE_KAFKA_BROKERS and SLUICE_ELASTICSEARCH_URLS name real servers;
// the shipper tailing <dir>/node/var/log/containers, the router and the
// indexer, each read from its own SLUICE_* settings with dev defaults
// underneath; the ingest gateway on SLUICE_DEV_GATEWAY_ADDR (against a
// Kafka without authentication, the embedded one, the basic-auth user name
// is the tenant and no password is checked; against one with SASL, the
// gateway's normal mode); one telemetry server for all three (on 127.0.0.1 unless told
// otherwise); the tenants (a tenant for every namespace in the node tree
// and every pipeline applied: tenants.go); the pod metadata of
// <dir>/pods.yaml, served to the shipper by a stand-in for the Kubernetes
// API (kube.go); and with Options.Demo the demo workload (internal/demo)
// and its tenants. StartKafka and StartStore start one embedded server
// each (servers.go, the only file that names the store's package).
//
// It imports the stages, so it is a tool like cmd/ and loadtest/: no stage
// and nothing under internal/ or schemas/ may import it
// (internal/archtest), and the production build (-tags nodev) links none
// of it. Never for production.
package devstack
