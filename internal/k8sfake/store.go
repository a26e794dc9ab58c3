package k8sfake

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// change is one entry of the event history: the object before and after a
// change at resource version rv (old is nil for a creation, new for a
// deletion, where obj is the last state stamped with the deletion's rv).
type change struct {
	rv       int64
	res      *resource
	old, obj object
	deleted  bool
}

// key is an object's store key: "namespace/name", or "name" for a
// cluster-scoped object.
func key(o object) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}

// stamp prepares a copy of o for the store at resource version rv: the
// resource version, and a UID and creation time when o has none.
func (s *Server) stamp(o object, rv int64, prev object) {
	o.SetResourceVersion(strconv.FormatInt(rv, 10))
	if o.GetUID() == "" {
		if prev != nil {
			o.SetUID(prev.GetUID())
		} else {
			o.SetUID(types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", rv)))
		}
	}
	if created := o.GetCreationTimestamp(); created.IsZero() {
		if prev != nil {
			o.SetCreationTimestamp(prev.GetCreationTimestamp())
		} else {
			o.SetCreationTimestamp(metav1.NewTime(time.Now().Truncate(time.Second)))
		}
	}
}

// put adds (create) or replaces (!create) an object and records the change.
// It panics on misuse: a missing name or namespace, a create of an existing
// object, an update of a missing one.
func (s *Server) put(res *resource, o object, create bool) object {
	op := "Update"
	if create {
		op = "Add"
	}
	if o.GetName() == "" {
		panic(fmt.Sprintf("k8sfake: %s%s: no name", op, res.kind))
	}
	if res.namespaced && o.GetNamespace() == "" {
		panic(fmt.Sprintf("k8sfake: %s%s %s: no namespace", op, res.kind, o.GetName()))
	}
	if !res.namespaced && o.GetNamespace() != "" {
		panic(fmt.Sprintf("k8sfake: %s%s %s: a %s has no namespace", op, res.kind, o.GetName(), res.kind))
	}
	o = o.DeepCopyObject().(object)
	k := key(o)

	s.mu.Lock()
	defer s.mu.Unlock()
	objs := s.objects[res]
	prev := objs[k]
	switch {
	case create && prev != nil:
		panic(fmt.Sprintf("k8sfake: Add%s: %s %q exists", res.kind, res.name, k))
	case !create && prev == nil:
		panic(fmt.Sprintf("k8sfake: Update%s: %s %q not found", res.kind, res.name, k))
	}
	s.rv++
	s.stamp(o, s.rv, prev)
	objs[k] = o
	s.recordLocked(change{rv: s.rv, res: res, old: prev, obj: o})
	return o.DeepCopyObject().(object)
}

// remove deletes an object and records the change; it panics when the
// object does not exist.
func (s *Server) remove(res *resource, namespace, name string) {
	k := name
	if res.namespaced {
		k = namespace + "/" + name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.objects[res][k]
	if prev == nil {
		panic(fmt.Sprintf("k8sfake: Delete%s: %s %q not found", res.kind, res.name, k))
	}
	delete(s.objects[res], k)
	s.rv++
	last := prev.DeepCopyObject().(object)
	last.SetResourceVersion(strconv.FormatInt(s.rv, 10))
	s.recordLocked(change{rv: s.rv, res: res, old: prev, obj: last, deleted: true})
}

// recordLocked appends a change to the history, trims the history to its
// limit (what is trimmed is compacted: a watch from before it gets 410
// Gone) and wakes the watches. s.mu is held.
func (s *Server) recordLocked(c change) {
	s.history = append(s.history, c)
	if len(s.history) > s.historyLimit {
		drop := len(s.history) - s.historyLimit/2
		s.compacted = s.history[drop-1].rv
		s.history = append([]change(nil), s.history[drop:]...)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// snapshotLocked returns the objects of res that match sel (in namespace,
// if not ""), sorted by key, and the current resource version. s.mu is
// held.
func (s *Server) snapshotLocked(res *resource, namespace string, sel *selector) ([]object, int64) {
	var out []object
	for _, o := range s.objects[res] {
		if namespace != "" && o.GetNamespace() != namespace {
			continue
		}
		if sel.matches(res, o) {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out, s.rv
}

// eventsLocked returns the watch events a watch of res in namespace with
// sel sees for the changes after rv, and the resource version it has then
// seen up to. An object that stops matching the selectors is seen as
// DELETED, one that starts matching as ADDED, as the API server does.
// ok is false when the history no longer reaches back to rv.
func (s *Server) eventsLocked(res *resource, namespace string, sel *selector, rv int64) (evs []event, upTo int64, ok bool) {
	if rv < s.compacted {
		return nil, rv, false
	}
	i := sort.Search(len(s.history), func(i int) bool { return s.history[i].rv > rv })
	for _, c := range s.history[i:] {
		if c.res != res || (namespace != "" && c.obj.GetNamespace() != namespace) {
			continue
		}
		was := c.old != nil && sel.matches(res, c.old)
		is := !c.deleted && sel.matches(res, c.obj)
		switch {
		case c.deleted && was:
			evs = append(evs, event{watch.Deleted, c.obj})
		case was && is:
			evs = append(evs, event{watch.Modified, c.obj})
		case was && !is:
			evs = append(evs, event{watch.Deleted, c.obj})
		case !was && is:
			evs = append(evs, event{watch.Added, c.obj})
		}
	}
	return evs, s.rv, true
}

// event is one watch event to send.
type event struct {
	typ watch.EventType
	obj object
}

// AddPod creates a pod and returns the stored copy, with its resource
// version, UID and creation time set. It panics if the pod exists or has no
// name or namespace.
func (s *Server) AddPod(p *corev1.Pod) *corev1.Pod { return s.put(pods, p, true).(*corev1.Pod) }

// UpdatePod replaces a pod (matched by namespace and name) and returns the
// stored copy with its new resource version; a UID or creation time left
// empty is kept from the stored pod. It panics if the pod does not exist.
func (s *Server) UpdatePod(p *corev1.Pod) *corev1.Pod { return s.put(pods, p, false).(*corev1.Pod) }

// DeletePod deletes a pod at once (no grace period); it panics if the pod
// does not exist.
func (s *Server) DeletePod(namespace, name string) { s.remove(pods, namespace, name) }

// AddNamespace creates a namespace, as AddPod does a pod.
func (s *Server) AddNamespace(n *corev1.Namespace) *corev1.Namespace {
	return s.put(namespaces, n, true).(*corev1.Namespace)
}

// UpdateNamespace replaces a namespace, as UpdatePod does a pod.
func (s *Server) UpdateNamespace(n *corev1.Namespace) *corev1.Namespace {
	return s.put(namespaces, n, false).(*corev1.Namespace)
}

// DeleteNamespace deletes a namespace (not the objects in it).
func (s *Server) DeleteNamespace(name string) { s.remove(namespaces, "", name) }

// AddReplicaSet creates a ReplicaSet, as AddPod does a pod.
func (s *Server) AddReplicaSet(rs *appsv1.ReplicaSet) *appsv1.ReplicaSet {
	return s.put(replicaSets, rs, true).(*appsv1.ReplicaSet)
}

// UpdateReplicaSet replaces a ReplicaSet, as UpdatePod does a pod.
func (s *Server) UpdateReplicaSet(rs *appsv1.ReplicaSet) *appsv1.ReplicaSet {
	return s.put(replicaSets, rs, false).(*appsv1.ReplicaSet)
}

// DeleteReplicaSet deletes a ReplicaSet.
func (s *Server) DeleteReplicaSet(namespace, name string) { s.remove(replicaSets, namespace, name) }

// AddJob creates a Job, as AddPod does a pod.
func (s *Server) AddJob(j *batchv1.Job) *batchv1.Job { return s.put(jobs, j, true).(*batchv1.Job) }

// UpdateJob replaces a Job, as UpdatePod does a pod.
func (s *Server) UpdateJob(j *batchv1.Job) *batchv1.Job { return s.put(jobs, j, false).(*batchv1.Job) }

// DeleteJob deletes a Job.
func (s *Server) DeleteJob(namespace, name string) { s.remove(jobs, namespace, name) }

// ResourceVersion is the current resource version: that of the last change.
func (s *Server) ResourceVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strconv.FormatInt(s.rv, 10)
}

// Compact forgets the event history up to now, as an etcd compaction does:
// a watch that resumes from an older resource version is answered 410 Gone
// (an ERROR event, reason Expired), and its client must list again. Open
// watches are not affected.
func (s *Server) Compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compacted = s.rv
	s.history = nil
}
