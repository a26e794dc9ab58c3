// Package eslite is the Elasticsearch stand-in of Sluice's development
// stack and tests: one small server that speaks the subset of the
// Elasticsearch 8 REST API the indexer, the controller, sluice search and
// the load test use, keeping its data in memory or in a directory.
package eslite
