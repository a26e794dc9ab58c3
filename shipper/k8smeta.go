package shipper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/schemas"
)

// kubeMeta is the node-local cache of Kubernetes metadata: the pods of this
// node (a pod informer field-selected on spec.nodeName), every namespace,
// and the CronJob owning each Job one of those pods belongs to. Informers
// keep it current over one watch per resource; objects are stripped to what
// records carry before they are stored (see transformPod). Pods and
// namespaces deleted are kept SLUICE_SHIPPER_METADATA_RETENTION for the late
// lines of their containers.
//
// Readers (followers) never wait on it: lookups are map reads under a read
// lock, and gen, which changes only when something a record carries
// changed, tells a follower whether to look again.
type kubeMeta struct {
	api         kubeAPI
	node        string
	annPrefixes []string
	nsPrefixes  []string
	tenantLabel string
	retention   time.Duration
	log         *slog.Logger
	limiter     *telemetry.Limiter
	m           *metrics
	// changed is called (without locks held) after gen moved: a pod
	// arrived or changed, a namespace's labels changed, a Job's owner
	// was found.
	changed func()

	gen     atomic.Uint64
	synced  atomic.Bool
	started time.Time
	wait    time.Duration

	jobsDenied atomic.Bool // the RBAC for jobs is absent: Jobs are not looked up

	mu         sync.RWMutex
	pods       map[string]*podMeta // by uid; deleted pods until retention
	byName     map[string]*podMeta // namespace/name -> the live pod
	namespaces map[string]*nsMeta
	jobs       map[string]*jobState // namespace/name
}

// podMeta is what records carry of a pod. It is never changed once stored:
// a change stores a new one, so followers may hold it (and its maps) as they
// are.
type podMeta struct {
	uid, namespace, name string
	labels               map[string]string
	annotations          map[string]string // the allow-listed ones
	images               map[string]string // container name -> image
	workload             schemas.Workload
	job                  string    // the owning Job's name
	jobPending           bool      // its owner is being looked up
	deleted              time.Time // zero while the pod exists
}

// nsMeta is what records carry of a namespace, and its tenant label.
type nsMeta struct {
	labels  map[string]string // the allow-listed ones
	tenant  string            // the value of SLUICE_SHIPPER_TENANT_LABEL
	deleted time.Time
}

// jobState is the owner of a Job, once looked up.
type jobState struct {
	workload schemas.Workload
	resolved bool
}

func newKubeMeta(api kubeAPI, cfg *Config, log *slog.Logger, m *metrics, node string) *kubeMeta {
	return &kubeMeta{
		api:         api,
		node:        node,
		annPrefixes: cleanPrefixes(cfg.AnnotationPrefixes),
		nsPrefixes:  cleanPrefixes(cfg.NamespaceLabelPrefixes),
		tenantLabel: cfg.TenantLabel,
		retention:   cfg.MetadataRetention,
		wait:        cfg.MetadataWait,
		log:         log,
		limiter:     telemetry.NewLimiter(time.Minute),
		m:           m,
		changed:     func() {},
		pods:        make(map[string]*podMeta),
		byName:      make(map[string]*podMeta),
		namespaces:  make(map[string]*nsMeta),
		jobs:        make(map[string]*jobState),
	}
}

func cleanPrefixes(in []string) []string {
	var out []string
	for _, p := range in {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// kubeClient builds a client of the API server: SLUICE_SHIPPER_KUBERNETES_API
// with the bearer token in SLUICE_SHIPPER_KUBERNETES_TOKEN_FILE (and the CA
// in SLUICE_SHIPPER_KUBERNETES_CA_FILE) when set, else the pod's service
// account (rest.InClusterConfig).
func kubeClient(cfg *Config, version string) (kubeAPI, error) {
	var rc *rest.Config
	if cfg.KubernetesAPI != "" {
		rc = &rest.Config{
			Host:            cfg.KubernetesAPI,
			BearerTokenFile: cfg.KubernetesTokenFile,
			TLSClientConfig: rest.TLSClientConfig{CAFile: cfg.KubernetesCAFile},
		}
	} else {
		var err error
		if rc, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("kubernetes client: %w (set SLUICE_SHIPPER_KUBERNETES_API, or SLUICE_SHIPPER_KUBERNETES_METADATA=off)", err)
		}
	}
	rc.UserAgent = "sluice-shipper/" + version
	// Two watches and a Job look-up now and then: a small budget, so that
	// a relist storm of many nodes stays gentle with the API server.
	rc.QPS, rc.Burst = 2, 10
	return newRESTAPI(rc)
}

// run starts the informers and keeps the cache until ctx ends. It returns
// once they are started; synced reports the first complete list of both.
func (k *kubeMeta) run(ctx context.Context) {
	k.started = time.Now()
	podInf := cache.NewSharedIndexInformerWithOptions(k.api.Pods(k.node), &kubePod{}, cache.SharedIndexInformerOptions{})
	nsInf := cache.NewSharedIndexInformerWithOptions(k.api.Namespaces(), &kubeObject{}, cache.SharedIndexInformerOptions{})
	_ = podInf.SetTransform(k.transformPod)
	_ = nsInf.SetTransform(k.transformNamespace)
	for name, inf := range map[string]cache.SharedIndexInformer{"pods": podInf, "namespaces": nsInf} {
		_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			k.apiError(name, err)
		})
	}
	_, _ = podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.podUpdated(obj) },
		UpdateFunc: func(_, obj any) { k.podUpdated(obj) },
		DeleteFunc: k.podDeleted,
	})
	_, _ = nsInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.namespaceUpdated(obj) },
		UpdateFunc: func(_, obj any) { k.namespaceUpdated(obj) },
		DeleteFunc: k.namespaceDeleted,
	})
	go podInf.RunWithContext(ctx)
	go nsInf.RunWithContext(ctx)
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), podInf.HasSynced, nsInf.HasSynced) {
			k.synced.Store(true)
			k.m.kubeSynced.Set(1)
			k.gen.Add(1)
			k.changed()
		}
	}()
	go every(ctx, min(max(k.retention/4, time.Second), time.Minute), k.purge)
}

// waitSynced waits until the first lists are in or d passed.
func (k *kubeMeta) waitSynced(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !k.synced.Load() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// waitable reports whether a follower whose pod is missing should wait for
// it: once the cache synced (the pod is on its way), or while the first
// sync may still come. An API server away from the start does not make
// every new follower wait.
func (k *kubeMeta) waitable() bool {
	return k.synced.Load() || time.Since(k.started) < k.wait
}

func (k *kubeMeta) apiError(what string, err error) {
	k.m.kubeAPIErrors.Inc()
	if errors.Is(err, context.Canceled) {
		return
	}
	if suppressed, ok := k.limiter.Allow("kube:" + what); ok {
		k.log.Warn("Kubernetes API request failed; records carry the metadata cached, or what the log path says (metadata=partial), until it answers again",
			"resource", what, "err", err, "suppressed", suppressed)
	}
}

// transformPod strips a pod to what records carry before the informer
// stores it: name, namespace, uid, labels, the allow-listed annotations,
// the controller reference, the node, and each container's name and image.
// Of the rest, what kubePod has no field for (status, volumes, env, ...)
// was never decoded; managedFields, the other annotations and owners are
// dropped here.
func (k *kubeMeta) transformPod(obj any) (any, error) {
	p, ok := obj.(*kubePod)
	if !ok {
		return obj, nil
	}
	out := &kubePod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            p.Name,
			Namespace:       p.Namespace,
			UID:             p.UID,
			ResourceVersion: p.ResourceVersion,
			Labels:          p.Labels,
			Annotations:     filterPrefixes(p.Annotations, k.annPrefixes, ""),
		},
		Spec: p.Spec,
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		out.OwnerReferences = []metav1.OwnerReference{{Kind: ref.Kind, Name: ref.Name, Controller: ref.Controller}}
	}
	return out, nil
}

// transformNamespace keeps a namespace's name, the allow-listed labels and
// the tenant label.
func (k *kubeMeta) transformNamespace(obj any) (any, error) {
	n, ok := obj.(*kubeObject)
	if !ok {
		return obj, nil
	}
	return &kubeObject{ObjectMeta: metav1.ObjectMeta{
		Name:            n.Name,
		UID:             n.UID,
		ResourceVersion: n.ResourceVersion,
		Labels:          filterPrefixes(n.Labels, k.nsPrefixes, k.tenantLabel),
	}}, nil
}

// filterPrefixes returns the entries of m whose key starts with one of the
// prefixes, or is keep.
func filterPrefixes(m map[string]string, prefixes []string, keep string) map[string]string {
	var out map[string]string
	for key, v := range m {
		ok := key == keep && keep != ""
		for _, p := range prefixes {
			if ok = ok || strings.HasPrefix(key, p); ok {
				break
			}
		}
		if ok {
			if out == nil {
				out = make(map[string]string)
			}
			out[key] = v
		}
	}
	return out
}

func (k *kubeMeta) podUpdated(obj any) {
	p, ok := obj.(*kubePod)
	if !ok || (p.Spec.NodeName != "" && p.Spec.NodeName != k.node) {
		return // another node's (a client that ignores the field selector)
	}
	pm := &podMeta{
		uid:         string(p.UID),
		namespace:   p.Namespace,
		name:        p.Name,
		labels:      p.Labels,
		annotations: p.Annotations,
	}
	add := func(name, image string) {
		if pm.images == nil {
			pm.images = make(map[string]string)
		}
		pm.images[name] = image
	}
	for _, c := range p.Spec.Containers {
		add(c.Name, c.Image)
	}
	for _, c := range p.Spec.InitContainers {
		add(c.Name, c.Image)
	}
	for _, c := range p.Spec.EphemeralContainers {
		add(c.Name, c.Image)
	}
	lookUpJob := false
	k.mu.Lock()
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		pm.workload, pm.jobPending, lookUpJob = k.workloadLocked(p, ref)
		if ref.Kind == "Job" {
			pm.job = ref.Name
		}
	}
	old := k.pods[pm.uid]
	same := old != nil && old.deleted.IsZero() && old.sameAs(pm)
	if !same {
		k.pods[pm.uid] = pm
		k.byName[pm.namespace+"/"+pm.name] = pm
	}
	k.countLocked()
	k.mu.Unlock()
	if lookUpJob {
		go k.lookUpJob(pm.namespace, pm.job)
	}
	if !same {
		k.gen.Add(1)
		k.changed()
	}
}

// sameAs reports whether two versions of a pod carry the same metadata:
// a status change (most updates) moves nothing.
func (p *podMeta) sameAs(q *podMeta) bool {
	return p.workload == q.workload && p.job == q.job && p.jobPending == q.jobPending &&
		mapsEqual(p.labels, q.labels) && mapsEqual(p.annotations, q.annotations) && mapsEqual(p.images, q.images)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// workloadLocked follows a pod's controller reference to its workload.
// A ReplicaSet made by a Deployment is named <deployment>-<pod-template-hash>,
// and its pods carry that hash as a label: the Deployment is read from the
// name, with no request and no RBAC for replicasets. A Job's CronJob cannot
// be told from names: the Job is read once (get jobs) and remembered; it
// reports whether that look-up must start. Meanwhile the pod's workload is
// the Job, and pending is true.
func (k *kubeMeta) workloadLocked(p *kubePod, ref *metav1.OwnerReference) (w schemas.Workload, pending, start bool) {
	switch ref.Kind {
	case "ReplicaSet":
		if h := p.Labels["pod-template-hash"]; h != "" && strings.HasSuffix(ref.Name, "-"+h) && len(ref.Name) > len(h)+1 {
			return schemas.Workload{Kind: "Deployment", Name: strings.TrimSuffix(ref.Name, "-"+h)}, false, false
		}
	case "Job":
		job := schemas.Workload{Kind: "Job", Name: ref.Name}
		if k.jobsDenied.Load() {
			return job, false, false
		}
		key := p.Namespace + "/" + ref.Name
		if js, ok := k.jobs[key]; ok {
			if js.resolved {
				return js.workload, false, false
			}
			return job, true, false // a look-up is under way; it updates this pod too
		}
		k.jobs[key] = &jobState{}
		return job, true, true
	}
	return schemas.Workload{Kind: ref.Kind, Name: ref.Name}, false, false
}

// jobLookupTimeout bounds one get of a Job.
const jobLookupTimeout = 5 * time.Second

// lookUpJob reads a Job's controller (its CronJob) and updates the pods it
// owns. A Job that cannot be read stays the workload; without the RBAC for
// jobs no Job is read again.
func (k *kubeMeta) lookUpJob(ns, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), jobLookupTimeout)
	job, err := k.api.Job(ctx, ns, name)
	cancel()
	w := schemas.Workload{Kind: "Job", Name: name}
	switch {
	case err == nil:
		if ref := metav1.GetControllerOfNoCopy(job); ref != nil && ref.Kind == "CronJob" {
			w = schemas.Workload{Kind: "CronJob", Name: ref.Name}
		}
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		if k.jobsDenied.CompareAndSwap(false, true) {
			k.log.Warn("not allowed to get jobs; pods of Jobs carry the Job as their workload, not its CronJob (grant get on jobs.batch to fix)", "err", err)
		}
		k.m.kubeAPIErrors.Inc()
	case apierrors.IsNotFound(err):
	default:
		k.apiError("jobs", err)
	}
	key := ns + "/" + name
	k.mu.Lock()
	k.jobs[key] = &jobState{workload: w, resolved: true}
	for uid, pm := range k.pods {
		if pm.namespace == ns && pm.job == name && pm.jobPending {
			np := *pm
			np.workload, np.jobPending = w, false
			k.pods[uid] = &np
			if k.byName[ns+"/"+pm.name] == pm {
				k.byName[ns+"/"+pm.name] = &np
			}
		}
	}
	k.countLocked()
	k.mu.Unlock()
	k.gen.Add(1)
	k.changed()
}

func (k *kubeMeta) podDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*kubePod)
	if !ok {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if pm := k.pods[string(p.UID)]; pm != nil && pm.deleted.IsZero() {
		np := *pm
		np.deleted = time.Now()
		k.pods[np.uid] = &np
	}
	key := p.Namespace + "/" + p.Name
	if pm := k.byName[key]; pm != nil && pm.uid == string(p.UID) {
		delete(k.byName, key)
	}
	k.countLocked()
}

func (k *kubeMeta) namespaceUpdated(obj any) {
	n, ok := obj.(*kubeObject)
	if !ok {
		return
	}
	nm := &nsMeta{tenant: n.Labels[k.tenantLabel]}
	if len(k.nsPrefixes) > 0 {
		nm.labels = filterPrefixes(n.Labels, k.nsPrefixes, "")
	}
	k.mu.Lock()
	old := k.namespaces[n.Name]
	same := old != nil && old.deleted.IsZero() && old.tenant == nm.tenant && mapsEqual(old.labels, nm.labels)
	if !same {
		k.namespaces[n.Name] = nm
	}
	k.countLocked()
	k.mu.Unlock()
	if !same {
		k.gen.Add(1)
		k.changed()
	}
}

func (k *kubeMeta) namespaceDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	n, ok := obj.(*kubeObject)
	if !ok {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if nm := k.namespaces[n.Name]; nm != nil && nm.deleted.IsZero() {
		c := *nm
		c.deleted = time.Now()
		k.namespaces[n.Name] = &c
	}
}

// purge forgets pods and namespaces deleted longer than the retention ago,
// and the Jobs no pod kept belongs to.
func (k *kubeMeta) purge() {
	cutoff := time.Now().Add(-k.retention)
	k.mu.Lock()
	defer k.mu.Unlock()
	jobs := make(map[string]bool)
	for uid, pm := range k.pods {
		if !pm.deleted.IsZero() && pm.deleted.Before(cutoff) {
			delete(k.pods, uid)
			continue
		}
		if pm.job != "" {
			jobs[pm.namespace+"/"+pm.job] = true
		}
	}
	for name, nm := range k.namespaces {
		if !nm.deleted.IsZero() && nm.deleted.Before(cutoff) {
			delete(k.namespaces, name)
		}
	}
	for key, js := range k.jobs {
		if js.resolved && !jobs[key] {
			delete(k.jobs, key)
		}
	}
	k.countLocked()
}

func (k *kubeMeta) countLocked() {
	k.m.kubeCached.WithLabelValues("pod").Set(float64(len(k.pods)))
	k.m.kubeCached.WithLabelValues("namespace").Set(float64(len(k.namespaces)))
	k.m.kubeCached.WithLabelValues("job").Set(float64(len(k.jobs)))
}

// lookup finds the metadata of the pod a log path names: by uid when the
// path has it (a pod recreated under the same name is another pod), else
// by name. ready is false while the pod's workload is being looked up.
func (k *kubeMeta) lookup(pm PathMeta) (pod *podMeta, ns *nsMeta, ready bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if pm.PodUID != "" {
		pod = k.pods[pm.PodUID]
	} else {
		pod = k.byName[pm.Namespace+"/"+pm.Pod]
	}
	ns = k.namespaces[pm.Namespace]
	return pod, ns, pod != nil && !pod.jobPending && ns != nil
}

// namespace returns a namespace's metadata, nil when it is not cached.
func (k *kubeMeta) namespace(name string) *nsMeta {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.namespaces[name]
}
