package k8sfake

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
)

// object is what the fake stores: a typed Kubernetes object.
type object interface {
	metav1.Object
	runtime.Object
}

// resource describes one served resource: where it lives in the API and
// which fields its field selectors may name.
type resource struct {
	group, version string
	name, kind     string // "pods", "Pod"
	namespaced     bool
	// fields returns the object's selectable fields, as the API server's
	// registry for the resource does (metadata.name, metadata.namespace and
	// a few resource-specific ones).
	fields func(object) fields.Set
	// zero returns an empty object of the resource's type.
	zero func() object
	// list wraps items in the resource's typed list.
	list func(rv string, items []object) runtime.Object
}

// apiVersion is "v1" for the core group, "group/version" otherwise.
func (r *resource) apiVersion() string {
	if r.group == "" {
		return r.version
	}
	return r.group + "/" + r.version
}

func metaFields(o object, namespaced bool) fields.Set {
	s := fields.Set{"metadata.name": o.GetName()}
	if namespaced {
		s["metadata.namespace"] = o.GetNamespace()
	}
	return s
}

var (
	pods = &resource{
		version: "v1", name: "pods", kind: "Pod", namespaced: true,
		zero: func() object { return &corev1.Pod{} },
		fields: func(o object) fields.Set {
			p := o.(*corev1.Pod)
			s := metaFields(o, true)
			s["spec.nodeName"] = p.Spec.NodeName
			s["spec.restartPolicy"] = string(p.Spec.RestartPolicy)
			s["spec.schedulerName"] = p.Spec.SchedulerName
			s["spec.serviceAccountName"] = p.Spec.ServiceAccountName
			s["spec.hostNetwork"] = strconv.FormatBool(p.Spec.HostNetwork)
			s["status.phase"] = string(p.Status.Phase)
			s["status.podIP"] = p.Status.PodIP
			s["status.nominatedNodeName"] = p.Status.NominatedNodeName
			return s
		},
		list: listOf(func(m metav1.ListMeta, items []corev1.Pod) runtime.Object {
			return &corev1.PodList{ListMeta: m, Items: items}
		}),
	}
	namespaces = &resource{
		version: "v1", name: "namespaces", kind: "Namespace",
		zero: func() object { return &corev1.Namespace{} },
		fields: func(o object) fields.Set {
			s := metaFields(o, false)
			s["status.phase"] = string(o.(*corev1.Namespace).Status.Phase)
			return s
		},
		list: listOf(func(m metav1.ListMeta, items []corev1.Namespace) runtime.Object {
			return &corev1.NamespaceList{ListMeta: m, Items: items}
		}),
	}
	replicaSets = &resource{
		group: "apps", version: "v1", name: "replicasets", kind: "ReplicaSet", namespaced: true,
		zero: func() object { return &appsv1.ReplicaSet{} },
		fields: func(o object) fields.Set {
			s := metaFields(o, true)
			s["status.replicas"] = strconv.Itoa(int(o.(*appsv1.ReplicaSet).Status.Replicas))
			return s
		},
		list: listOf(func(m metav1.ListMeta, items []appsv1.ReplicaSet) runtime.Object {
			return &appsv1.ReplicaSetList{ListMeta: m, Items: items}
		}),
	}
	jobs = &resource{
		group: "batch", version: "v1", name: "jobs", kind: "Job", namespaced: true,
		zero: func() object { return &batchv1.Job{} },
		fields: func(o object) fields.Set {
			s := metaFields(o, true)
			s["status.successful"] = strconv.Itoa(int(o.(*batchv1.Job).Status.Succeeded))
			return s
		},
		list: listOf(func(m metav1.ListMeta, items []batchv1.Job) runtime.Object {
			return &batchv1.JobList{ListMeta: m, Items: items}
		}),
	}
	// allResources are the served resources, in discovery order.
	allResources = []*resource{pods, namespaces, replicaSets, jobs}
)

// listOf makes a resource's list function: the items, copied into a slice
// of their type, wrapped by wrap in the typed list.
func listOf[T any, PT interface {
	*T
	object
}](wrap func(metav1.ListMeta, []T) runtime.Object) func(string, []object) runtime.Object {
	return func(rv string, items []object) runtime.Object {
		out := make([]T, 0, len(items))
		for _, o := range items {
			out = append(out, *o.(PT))
		}
		return wrap(metav1.ListMeta{ResourceVersion: rv}, out)
	}
}

// lookupResource finds the served resource of a group, version and name.
func lookupResource(group, version, name string) *resource {
	for _, r := range allResources {
		if r.group == group && r.version == version && r.name == name {
			return r
		}
	}
	return nil
}

// supportsField tells whether the resource's field selectors may use a
// field label; the API server answers 400 "field label not supported"
// otherwise.
func (r *resource) supportsField(field string) bool {
	_, ok := r.fields(r.zero())[field]
	return ok
}

// discoveryGroups is the body of GET /apis.
func discoveryGroups() *metav1.APIGroupList {
	l := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, g := range []string{"apps", "batch"} {
		l.Groups = append(l.Groups, *discoveryGroup(g))
	}
	return l
}

func discoveryGroup(group string) *metav1.APIGroup {
	gv := metav1.GroupVersionForDiscovery{GroupVersion: group + "/v1", Version: "v1"}
	return &metav1.APIGroup{
		TypeMeta:         metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
		Name:             group,
		Versions:         []metav1.GroupVersionForDiscovery{gv},
		PreferredVersion: gv,
	}
}

// discoveryResources is the APIResourceList of a group version; nil for an
// unknown one.
func discoveryResources(group, version string) *metav1.APIResourceList {
	var list []metav1.APIResource
	for _, r := range allResources {
		if r.group != group || r.version != version {
			continue
		}
		list = append(list, metav1.APIResource{
			Name:         r.name,
			SingularName: singular(r.kind),
			Namespaced:   r.namespaced,
			Kind:         r.kind,
			Verbs:        metav1.Verbs{"get", "list", "watch"},
		})
	}
	if list == nil {
		return nil
	}
	gv := version
	if group != "" {
		gv = group + "/" + version
	}
	return &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: gv,
		APIResources: list,
	}
}

func singular(kind string) string {
	b := []byte(kind)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
