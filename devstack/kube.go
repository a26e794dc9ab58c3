package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/sluicelogs/sluice/internal/k8sfake"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/nodelog"
)

// The dev stack's pod metadata: <dir>/pods.yaml holds Kubernetes manifests
// (Namespaces, Pods, ReplicaSets, Jobs) that `sluice dev` serves to its
// shipper through the fake API server its tests use (internal/k8sfake),
// over HTTP on a loopback port, so that the shipper's real client-go
// informers, workload look-ups and tenant labels run as in a cluster. The
// file is read at start and followed while the stack runs: an edit is
// served within a second, and the pods' next lines carry it. The stand-in
// serves only when the file exists at start (the demo writes one if there
// is none) and SLUICE_SHIPPER_KUBERNETES_API is not set: with it set, the
// shipper asks that API server (kubectl proxy, say) and the file is left
// alone.
const podsFileName = "pods.yaml"

// devKube serves the manifests of a pods file.
type devKube struct {
	path        string
	node        string // the dev node: a pod without spec.nodeName runs on it
	tree        *nodelog.Node
	tenantLabel string
	tenants     *tenantMaker
	log         *slog.Logger

	api *k8sfake.Server
	srv *http.Server
	url string

	stamp   fileStamp
	applied map[string][]byte // kind/namespace/name -> the JSON last served
}

// fileStamp tells whether a file changed since it was last read.
type fileStamp struct {
	mod  time.Time
	size int64
}

// startDevKube serves the manifests of path on a loopback port. The first
// read must succeed: a broken file at start is an error, not a stack
// without metadata.
func startDevKube(ctx context.Context, path, node, tenantLabel string, tree *nodelog.Node, tenants *tenantMaker, log *slog.Logger) (*devKube, error) {
	k := &devKube{path: path, node: node, tree: tree, tenantLabel: tenantLabel, tenants: tenants, log: log,
		api: k8sfake.New(), applied: map[string][]byte{}}
	if err := k.reload(ctx); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pod metadata: %w", err)
	}
	k.url = "http://" + ln.Addr().String()
	k.srv = &http.Server{Handler: k.api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = k.srv.Serve(ln) }()
	return k, nil
}

// close ends the watches and stops serving.
func (k *devKube) close() {
	k.api.Close()
	_ = k.srv.Close()
}

// follow re-reads the file when it changes, and serves a namespace for
// every namespace that appears in the node tree (in a cluster every pod's
// namespace exists), until ctx ends.
func (k *devKube) follow(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := k.reload(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("pod metadata file not applied; what was served before stays", "file", k.path, "err", err)
		}
	}
}

// reload reads the file if it changed and serves what it declares.
func (k *devKube) reload(ctx context.Context) error {
	fi, err := os.Stat(k.path)
	if err != nil {
		return fmt.Errorf("pod metadata: %w", err)
	}
	st := fileStamp{fi.ModTime(), fi.Size()}
	if st == k.stamp {
		return k.apply(ctx, nil, false)
	}
	data, err := os.ReadFile(k.path)
	if err != nil {
		return fmt.Errorf("pod metadata: %w", err)
	}
	objs, err := parseManifests(data)
	if err != nil {
		k.stamp = st // reported once, not every second
		return fmt.Errorf("%s: %w", k.path, err)
	}
	if err := k.apply(ctx, objs, true); err != nil {
		return err
	}
	k.stamp = st
	return nil
}

// served is one object the file declares, in the order it is served.
type served struct {
	key  string // kind/namespace/name
	obj  metav1.Object
	data []byte // its JSON, to tell a change
}

// kindOrder serves namespaces before what is in them, and owners before
// pods.
var kindOrder = map[string]int{"Namespace": 0, "ReplicaSet": 1, "Job": 1, "Pod": 2}

// apply serves objs (when declared, the file's objects; otherwise the
// file's objects as last served) and a namespace for every namespace of
// the node tree: adds what is new, updates what changed and, when
// declared, deletes what the file no longer declares.
func (k *devKube) apply(ctx context.Context, objs []metav1.Object, declared bool) error {
	want := map[string]served{}
	if declared {
		for _, o := range objs {
			k.defaults(o)
			data, err := json.Marshal(o)
			if err != nil {
				return err
			}
			key := kindOf(o) + "/" + o.GetNamespace() + "/" + o.GetName()
			if _, dup := want[key]; dup {
				return fmt.Errorf("%s %s/%s is declared twice", kindOf(o), o.GetNamespace(), o.GetName())
			}
			want[key] = served{key: key, obj: o, data: data}
		}
	} else {
		for key, data := range k.applied {
			want[key] = served{key: key, data: data}
		}
	}
	// Every pod's namespace exists, declared or not.
	namespaces := treeNamespaces(k.tree)
	for _, s := range want {
		if s.obj != nil {
			namespaces = append(namespaces, s.obj.GetNamespace())
		}
	}
	for _, ns := range namespaces {
		key := "Namespace//" + ns
		if _, ok := want[key]; ok || ns == "" {
			continue
		}
		o := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		data, _ := json.Marshal(o)
		want[key] = served{key: key, obj: o, data: data}
	}

	order := make([]served, 0, len(want))
	for _, s := range want {
		order = append(order, s)
	}
	slices.SortFunc(order, func(a, b served) int {
		ka, kb := kindOrder[strings.SplitN(a.key, "/", 2)[0]], kindOrder[strings.SplitN(b.key, "/", 2)[0]]
		if ka != kb {
			return ka - kb
		}
		return strings.Compare(a.key, b.key)
	})
	added, updated, deleted := 0, 0, 0
	for _, s := range order {
		prev, ok := k.applied[s.key]
		if ok && bytes.Equal(prev, s.data) {
			continue
		}
		if ns, isNS := s.obj.(*corev1.Namespace); isNS && k.tenantLabel != "" {
			// The tenant a namespace label names gets its topics before a
			// line is sent to them.
			if t := ns.Labels[k.tenantLabel]; t != "" {
				if err := kafka.ValidateTenant(t); err != nil {
					k.log.Warn("a namespace's tenant label is not a tenant name; the shipper falls back to the next rule", "namespace", ns.Name, "label", k.tenantLabel, "err", err)
				} else if err := k.tenants.ensure(ctx, t); err != nil {
					return err
				}
			}
		}
		k.put(s.obj, ok)
		k.applied[s.key] = s.data
		if ok {
			updated++
		} else {
			added++
		}
	}
	if declared {
		var gone []string
		for key := range k.applied {
			if _, ok := want[key]; !ok {
				gone = append(gone, key)
			}
		}
		// Pods first, namespaces last: the reverse of the serving order.
		slices.SortFunc(gone, func(a, b string) int {
			return kindOrder[strings.SplitN(b, "/", 2)[0]] - kindOrder[strings.SplitN(a, "/", 2)[0]]
		})
		for _, key := range gone {
			k.remove(key)
			delete(k.applied, key)
			deleted++
		}
	}
	if declared || added+updated+deleted > 0 {
		k.log.Info("pod metadata served", "file", k.path, "added", added, "updated", updated, "deleted", deleted)
	}
	return nil
}

// defaults fills in what the file may leave out: a pod's node (the dev
// node), its uid (the one the dev stack's own log paths carry), its
// namespace ("default", as kubectl's).
func (k *devKube) defaults(o metav1.Object) {
	if o.GetNamespace() == "" {
		if _, namespaced := o.(*corev1.Namespace); !namespaced {
			o.SetNamespace("default")
		}
	}
	if p, ok := o.(*corev1.Pod); ok {
		if p.Spec.NodeName == "" {
			p.Spec.NodeName = k.node
		}
		if p.UID == "" {
			p.UID = types.UID(nodelog.PodUID(p.Namespace, p.Name))
		}
	}
}

func (k *devKube) put(o metav1.Object, update bool) {
	switch o := o.(type) {
	case *corev1.Namespace:
		if update {
			k.api.UpdateNamespace(o)
		} else {
			k.api.AddNamespace(o)
		}
	case *corev1.Pod:
		if update {
			k.api.UpdatePod(o)
		} else {
			k.api.AddPod(o)
		}
	case *appsv1.ReplicaSet:
		if update {
			k.api.UpdateReplicaSet(o)
		} else {
			k.api.AddReplicaSet(o)
		}
	case *batchv1.Job:
		if update {
			k.api.UpdateJob(o)
		} else {
			k.api.AddJob(o)
		}
	}
}

func (k *devKube) remove(key string) {
	parts := strings.SplitN(key, "/", 3)
	switch kind, ns, name := parts[0], parts[1], parts[2]; kind {
	case "Namespace":
		k.api.DeleteNamespace(name)
	case "Pod":
		k.api.DeletePod(ns, name)
	case "ReplicaSet":
		k.api.DeleteReplicaSet(ns, name)
	case "Job":
		k.api.DeleteJob(ns, name)
	}
}

func kindOf(o metav1.Object) string {
	switch o.(type) {
	case *corev1.Namespace:
		return "Namespace"
	case *corev1.Pod:
		return "Pod"
	case *appsv1.ReplicaSet:
		return "ReplicaSet"
	default:
		return "Job"
	}
}

// parseManifests reads YAML (or JSON) documents of Namespaces, Pods,
// ReplicaSets and Jobs, and Lists of them (what kubectl get -o yaml
// prints). Fields are checked: a misspelt one is an error, not a label
// silently missing.
func parseManifests(data []byte) ([]metav1.Object, error) {
	dec := k8syaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []metav1.Object
	for doc := 1; ; doc++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		objs, err := decodeManifest(raw)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		out = append(out, objs...)
	}
}

func decodeManifest(raw json.RawMessage) ([]metav1.Object, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil // an empty document, or only comments
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return nil, err
	}
	var o metav1.Object
	switch tm.Kind {
	case "List":
		var l struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        metav1.ListMeta   `json:"metadata"`
			Items           []json.RawMessage `json:"items"`
		}
		if err := strictJSON(raw, &l); err != nil {
			return nil, fmt.Errorf("List: %w", err)
		}
		var out []metav1.Object
		for i, item := range l.Items {
			objs, err := decodeManifest(item)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i+1, err)
			}
			out = append(out, objs...)
		}
		return out, nil
	case "Namespace":
		o = &corev1.Namespace{}
	case "Pod":
		o = &corev1.Pod{}
	case "ReplicaSet":
		o = &appsv1.ReplicaSet{}
	case "Job":
		o = &batchv1.Job{}
	case "":
		return nil, errors.New("no kind: every document is a Kubernetes manifest with apiVersion and kind")
	default:
		return nil, fmt.Errorf("kind %s is not served: only Namespace, Pod, ReplicaSet and Job (and a List of them)", tm.Kind)
	}
	if err := strictJSON(raw, o); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if o.GetName() == "" {
		return nil, fmt.Errorf("%s: metadata.name is missing", tm.Kind)
	}
	return []metav1.Object{o}, nil
}

// strictJSON decodes data into v, refusing unknown fields.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
