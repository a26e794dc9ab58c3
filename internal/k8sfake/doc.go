// Package k8sfake is a fake Kubernetes API server speaking real HTTP, for
// process-level tests of client-go (informers, listers, gets) against
// something that behaves as the API server does where the Sluice shipper's
// Kubernetes metadata depends on it; sluice dev also serves its pods file
// with it. It is a stand-in for tests and development, never a server for
// production: it keeps everything in memory, serves JSON only, is
// read-only over HTTP (tests change objects with its Go methods), and has
// no admission, defaulting or garbage collection.
//
// Start serves it on a loopback httptest server closed with t.Cleanup;
// New plus Handler embeds it in another server.
//
//	api := k8sfake.Start(t, k8sfake.RequireToken("t"))
//	api.AddPod(&corev1.Pod{...})
//	cs, _ := kubernetes.NewForConfig(&rest.Config{Host: api.URL(), BearerToken: "t"})
//	... informers.NewSharedInformerFactory(cs, 0) ...
//
// # Endpoints
//
//   - GET /api, /api/v1, /apis, /apis/{apps,batch}, /apis/{apps,batch}/v1:
//     the discovery documents (unaggregated) of the served resources;
//     /version (v1.37.2), /healthz, /livez, /readyz.
//   - GET of pods (v1), namespaces (v1), replicasets (apps/v1) and jobs
//     (batch/v1): list and watch cluster-wide (/api/v1/pods) or in a
//     namespace (/api/v1/namespaces/{ns}/pods), and get of one object
//     (/apis/batch/v1/namespaces/{ns}/jobs/{name}, /api/v1/namespaces/{name}).
//   - labelSelector with the API server's syntax, and fieldSelector on the
//     fields the API server's registries allow: metadata.name and
//     metadata.namespace, and for pods spec.nodeName, spec.restartPolicy,
//     spec.schedulerName, spec.serviceAccountName, spec.hostNetwork,
//     status.phase, status.podIP and status.nominatedNodeName; namespaces
//     status.phase; replicasets status.replicas; jobs status.successful.
//     Another field is answered 400 "field label not supported".
//   - Anything else: 404 Status; another method than GET: 405; an Accept
//     without JSON: 406. Errors are metav1.Status bodies with the API
//     server's reasons and wording, so client-go's apierrors helpers
//     (IsNotFound, IsResourceExpired, ...) classify them.
//
// # Resource versions, lists and watches
//
// Every change (Add, Update, Delete methods) takes the next resource
// version of one counter, as etcd's revision. A list is served whole
// (limit is ignored, as the watch cache does) at the current resource
// version; one for a version not reached yet is answered 504 "Too large
// resource version", resourceVersionMatch=Exact at an older version 410.
//
// A watch (?watch=true) is a chunked stream of JSON watch events (ADDED,
// MODIFIED, DELETED, BOOKMARK, ERROR). From resourceVersion "" or "0" it
// starts with ADDED events for the objects as they are; from N with the
// changes after N. With sendInitialEvents=true (a streaming list, which
// client-go's reflector asks for first) the initial ADDED events end with
// a BOOKMARK annotated k8s.io/initial-events-end; WithoutWatchList makes
// the server refuse that with 422, so the reflector falls back to list and
// watch. As with the API server, an object that starts matching a watch's
// selectors is seen as ADDED and one that stops matching as DELETED.
//
// The server remembers the last changes (HistoryLimit, default 10000); a
// watch from before them is answered with an ERROR event 410 Expired, and
// a client-go reflector then lists again. Compact forgets the history at
// once, ExpireWatches also ends the open watches with 410, EndWatches ends
// them cleanly (a BOOKMARK, then the end of the response, as at a watch's
// timeout), and WatchTimeout bounds every watch.
//
// # Faults and figures
//
// RequireToken answers 401 to a request without the bearer token.
// SetDown(true) answers 503 to every request and cuts the open watches'
// connections, SetDown(false) brings the server back: a client-go informer
// backs off, then lists (or streams) the objects again and reports what
// changed meanwhile. Requests counts the requests by verb and resource,
// for figures such as the API requests a node's shipper makes per minute,
// and OpenWatches the watches being served.
//
// The Server and its methods are safe for concurrent use. The methods that
// change objects panic on misuse (adding an object that exists, changing
// or deleting one that does not, a namespaced object without a namespace),
// as these are mistakes of the test.
package k8sfake
