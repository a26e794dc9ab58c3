// Package controller is sluice-controller: it keeps Kafka and
// Elasticsearch in line with the Tenant and Pipeline resources of a
// cluster (group sluice.io, package v1alpha1), so that tenants and their
// pipelines can be declared in Git and applied by Argo CD or Flux, and
// report their state where kubectl shows it.
//
// It is a module and a binary of its own, not a command of cmd/sluice:
// controller-runtime links client-go's typed clientset, whose API groups
// register themselves at start. In the sluice binary that would cost every
// shipper, on every node, about 26 MB of binary and 17-23 MB of resident
// memory for a controller it never runs; the shipper talks to the API
// server through client-go's REST client alone for that reason. Like
// deploy/, this module replaces github.com/sluicelogs/sluice with the
// checkout it sits in, and uses its internal packages. It uses the router
// package as sluice pipeline apply does (router.Load, ApplyPipeline), so a
// Pipeline is validated and tested by the very code routers run.
//
// TenantReconciler turns a Tenant into its topics, SCRAM user, ACLs and
// quotas (internal/kafka, the code of sluice tenant create) and writes the
// user's credentials to the Secret the Tenant names. PipelineReconciler
// validates a Pipeline, runs its tests and stores it in its tenant's config
// topic, when the tenant owns the Pipeline's namespace; a document that
// fails is never applied, and the version in force stays. Both report
// conditions (Ready; for a Pipeline also Validated and Applied) that
// kubectl shows.
//
// PipelineValidator, an optional validating admission webhook
// (SLUICE_CONTROLLER_WEBHOOK_PORT), refuses at admission what
// PipelineReconciler would refuse to apply, through the same checks
// (checkPipeline, versionNotRaised) and with the same words; what needs
// Kafka stays the reconciler's. Without it the API server takes any
// Pipeline, and its status says why it is not applied.
package controller
