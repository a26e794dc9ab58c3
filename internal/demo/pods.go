package demo

// PodsYAML declares the demo's pods and namespaces as Kubernetes
// manifests: sluice dev writes it as <dir>/pods.yaml when there is none
// and serves it to its shipper, so the demo's documents carry pod labels,
// a container image and a Deployment. Every pod the workload writes for
// is declared (TestPodsDeclared).
const PodsYAML = `# Pod metadata of the dev node, served to the shipper by the dev stack's built-in
# Kubernetes API stand-in. Kubernetes manifests of Namespaces, Pods, ReplicaSets and
# Jobs (or a List of them, as 'kubectl get pods -o yaml' prints), separated by ---.
# Edit it while 'sluice dev' runs: the change is served within a second and the
# pods' next lines carry it. The file is not rewritten while it exists.
#
# - A pod may leave out metadata.uid: it is then the uid of the pods directory the dev
#   stack's own logs are written to (/var/log/pods/<namespace>_<pod>_<uid>). For log
#   files you add, give the uid of their pods directory, or drop them as plain files
#   under var/log/containers (they are matched by pod name).
# - spec.nodeName may be left out: the dev node.
# - A namespace label sluice.io/tenant (SLUICE_SHIPPER_TENANT_LABEL) sends the
#   namespace's logs to that tenant, which the dev stack creates.
# - Records carry every pod label; annotations and namespace labels only under the
#   prefixes of SLUICE_SHIPPER_ANNOTATION_PREFIXES and
#   SLUICE_SHIPPER_NAMESPACE_LABEL_PREFIXES (none by default).
# - A pod owned by a ReplicaSet <name>-<pod-template-hash> is a Deployment's.
#
# Search on labels: bin/sluice search --tenant shop 'kubernetes.labels.app:cart'
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: storefront}
---
apiVersion: v1
kind: Pod
metadata:
  name: cart-5d8f7b9c4-x2x9z
  namespace: shop
  labels: {app: cart, version: "1.4.2", pod-template-hash: 5d8f7b9c4}
  annotations: {prometheus.io/scrape: "true"}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: cart-5d8f7b9c4, uid: 6d1c5e1a-0000-4000-8000-000000000001, controller: true}]
spec:
  containers: [{name: cart, image: registry.example.com/shop/cart:1.4.2}]
---
apiVersion: v1
kind: Pod
metadata:
  name: checkout-7c6d5f8b9-q8w7e
  namespace: shop
  labels: {app: checkout, version: "2.0.1", pod-template-hash: 7c6d5f8b9}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: checkout-7c6d5f8b9, uid: 6d1c5e1a-0000-4000-8000-000000000002, controller: true}]
spec:
  containers: [{name: checkout, image: registry.example.com/shop/checkout:2.0.1}]
---
apiVersion: v1
kind: Namespace
metadata:
  name: payments
  labels: {team: payments}
---
apiVersion: v1
kind: Pod
metadata:
  name: ledger-6b7c8d9f5-m4n5b
  namespace: payments
  labels: {app: ledger, version: "0.9.7", pod-template-hash: 6b7c8d9f5}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: ledger-6b7c8d9f5, uid: 6d1c5e1a-0000-4000-8000-000000000003, controller: true}]
spec:
  containers: [{name: ledger, image: registry.example.com/payments/ledger:0.9.7}]
---
apiVersion: v1
kind: Pod
metadata:
  name: nginx-5f4d3c2b1-z9y8x
  namespace: web
  labels: {app: nginx, version: "1.27", pod-template-hash: 5f4d3c2b1}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: nginx-5f4d3c2b1, uid: 6d1c5e1a-0000-4000-8000-000000000004, controller: true}]
spec:
  containers: [{name: nginx, image: nginx:1.27}]
`
