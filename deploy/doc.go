// Package deploy holds the tests of Sluice's deployment files: the Helm chart
// (helm/sluice), the manifests rendered from it (kubernetes/sluice.yaml), the
// alert rules and dashboard (helm/sluice/files), and the root
// docker-compose.yml.
//
// It is a module of its own so that the libraries these tests need (Helm,
// the Kubernetes API types, the Prometheus query parser, compose-go) stay out
// of the pipeline's module graph. It refers to the pipeline's module through
// a replace directive, so the tests check the chart and compose settings
// against the stages' real configuration structs and metrics.
//
// `make manifests` rewrites kubernetes/sluice.yaml (go test -run
// TestManifests -update); `make test` runs these tests.
package deploy
