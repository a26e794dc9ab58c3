// Package gateway is the ingest gateway, `sluice gateway`: a stateless
// HTTP server that takes logs from outside the cluster (OTLP/HTTP, lines
// from curl and scripts) and produces them to <prefix>.raw.<tenant> as the
// shipper does, authenticated as the tenant's own Kafka user.
package gateway
