package shipper

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// kubeAPI is what the shipper asks of the Kubernetes API server: to list
// and watch the pods of one node (as *kubePod) and the namespaces (as
// *kubeNamespace), and to get a Job. restAPI is the one the shipper uses;
// tests give their own over client-go's fake clientset (Shipper.kcs).
//
// Why not client-go's clientset, informer factory and API types: they link
// every API group of Kubernetes into the binary and register all of them
// at start, which more than doubled the shipper's binary (36 to 82 MB) and
// its resident set before it read a line (21 to 42 MB), on every node,
// with metadata off too. The shipper needs two resources, one get, and a
// handful of fields of each: client-go's REST client and the informers of
// client-go/tools/cache, the same machinery as the factory's, over types
// of our own that hold only those fields (the JSON decoder skips the rest,
// so a pod's environment, volumes and status are never even allocated).
type kubeAPI interface {
	// Pods lists and watches the pods whose spec.nodeName is node.
	Pods(node string) cache.ListerWatcher
	// Namespaces lists and watches every namespace.
	Namespaces() cache.ListerWatcher
	// Job gets a Job's metadata.
	Job(ctx context.Context, namespace, name string) (metav1.Object, error)
}

// The API groups and versions the shipper reads.
var (
	coreV1  = schema.GroupVersion{Version: "v1"}
	batchV1 = schema.GroupVersion{Group: "batch", Version: "v1"}
)

// kubePod is what the shipper reads of a Pod.
type kubePod struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              kubePodSpec `json:"spec,omitempty"`
}

type kubePodSpec struct {
	NodeName            string          `json:"nodeName,omitempty"`
	Containers          []kubeContainer `json:"containers,omitempty"`
	InitContainers      []kubeContainer `json:"initContainers,omitempty"`
	EphemeralContainers []kubeContainer `json:"ephemeralContainers,omitempty"`
}

// kubeContainer is a container of a pod's spec (an ephemeral container's
// name and image are at the same place).
type kubeContainer struct {
	Name  string `json:"name"`
	Image string `json:"image,omitempty"`
}

type kubePodList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []kubePod `json:"items"`
}

// kubeObject is what the shipper reads of a Namespace or a Job: its
// metadata.
type kubeObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
}

type kubeObjectList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []kubeObject `json:"items"`
}

func (p *kubePod) DeepCopyObject() runtime.Object {
	out := &kubePod{TypeMeta: p.TypeMeta, Spec: kubePodSpec{NodeName: p.Spec.NodeName,
		Containers:          slices.Clone(p.Spec.Containers),
		InitContainers:      slices.Clone(p.Spec.InitContainers),
		EphemeralContainers: slices.Clone(p.Spec.EphemeralContainers)}}
	p.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return out
}

func (l *kubePodList) DeepCopyObject() runtime.Object {
	out := &kubePodList{TypeMeta: l.TypeMeta, Items: make([]kubePod, len(l.Items))}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	for i := range l.Items {
		out.Items[i] = *l.Items[i].DeepCopyObject().(*kubePod)
	}
	return out
}

func (o *kubeObject) DeepCopyObject() runtime.Object {
	out := &kubeObject{TypeMeta: o.TypeMeta}
	o.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return out
}

func (l *kubeObjectList) DeepCopyObject() runtime.Object {
	out := &kubeObjectList{TypeMeta: l.TypeMeta, Items: make([]kubeObject, len(l.Items))}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	for i := range l.Items {
		out.Items[i] = *l.Items[i].DeepCopyObject().(*kubeObject)
	}
	return out
}

// kubeScheme knows our types as v1 Pods and Namespaces and batch/v1 Jobs,
// and the meta types (Status, WatchEvent, list options) of both.
func kubeScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	s.AddKnownTypeWithName(coreV1.WithKind("Pod"), &kubePod{})
	s.AddKnownTypeWithName(coreV1.WithKind("PodList"), &kubePodList{})
	s.AddKnownTypeWithName(coreV1.WithKind("Namespace"), &kubeObject{})
	s.AddKnownTypeWithName(coreV1.WithKind("NamespaceList"), &kubeObjectList{})
	s.AddKnownTypeWithName(batchV1.WithKind("Job"), &kubeObject{})
	metav1.AddToGroupVersion(s, coreV1)
	metav1.AddToGroupVersion(s, batchV1)
	return s
}

// restAPI is the kubeAPI over client-go's REST client.
type restAPI struct {
	core, batch *rest.RESTClient
}

// newRESTAPI makes REST clients of core/v1 and batch/v1 over one HTTP
// client, speaking JSON.
func newRESTAPI(rc *rest.Config) (*restAPI, error) {
	codecs := serializer.NewCodecFactory(kubeScheme())
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	client := func(gv schema.GroupVersion, apiPath string) (*rest.RESTClient, error) {
		c := rest.CopyConfig(rc)
		c.GroupVersion, c.APIPath = &gv, apiPath
		c.NegotiatedSerializer = codecs.WithoutConversion()
		c.ContentType = runtime.ContentTypeJSON
		rcl, err := rest.RESTClientForConfigAndClient(c, hc)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client: %w", err)
		}
		return rcl, nil
	}
	a := &restAPI{}
	if a.core, err = client(coreV1, "/api"); err != nil {
		return nil, err
	}
	if a.batch, err = client(batchV1, "/apis"); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *restAPI) Pods(node string) cache.ListerWatcher {
	return cache.NewListWatchFromClient(a.core, "pods", metav1.NamespaceAll, fields.OneTermEqualSelector("spec.nodeName", node))
}

func (a *restAPI) Namespaces() cache.ListerWatcher {
	return cache.NewListWatchFromClient(a.core, "namespaces", metav1.NamespaceAll, fields.Everything())
}

func (a *restAPI) Job(ctx context.Context, namespace, name string) (metav1.Object, error) {
	job := &kubeObject{}
	err := a.batch.Get().Namespace(namespace).Resource("jobs").Name(name).Do(ctx).Into(job)
	return job, err
}
