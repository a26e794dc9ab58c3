package shipper

import (
	"context"
	"time"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/schemas"
)

// metaState is where a follower stands with its Kubernetes metadata.
type metaState uint8

const (
	metaOff     metaState = iota // no metadata cache: path metadata, not flagged
	metaWaiting                  // its pod is not in the cache yet; not reading for up to SLUICE_SHIPPER_METADATA_WAIT
	metaPartial                  // shipping with path metadata, flagged partial, until the pod is known
	metaFull                     // the pod's metadata
)

// startKube starts the metadata cache and waits for its first lists at most
// SLUICE_SHIPPER_METADATA_WAIT. It never fails: without a client (no
// in-cluster configuration) the cache stays empty and records are flagged
// partial.
func (sh *Shipper) startKube(ctx context.Context) {
	cs := sh.kcs
	if cs == nil {
		c, err := kubeClient(&sh.cfg, sh.version)
		if err != nil {
			sh.m.kubeAPIErrors.Inc()
			sh.log.Error("no Kubernetes API client; records carry what the log path says, flagged metadata=partial", "err", err)
		} else {
			cs = c
		}
	}
	k := newKubeMeta(cs, &sh.cfg, sh.log, sh.m, sh.node)
	k.changed = sh.kubeChanged
	sh.kube = k
	if cs == nil {
		k.started = time.Now()
		return
	}
	k.run(ctx)
	if !k.waitSynced(ctx, sh.cfg.MetadataWait) {
		sh.log.Warn("Kubernetes metadata not listed yet; shipping starts anyway, with what log paths say (metadata=partial) for pods not known yet",
			"waited", sh.cfg.MetadataWait)
	}
}

// kubeChanged wakes the followers waiting for their pod's metadata. Followers
// already shipping look at the cache again at their next batch.
func (sh *Shipper) kubeChanged() {
	for _, s := range sh.followerList() {
		if s.metaWait.Load() {
			s.wake()
		}
	}
}

// tenantFor decides the tenant of a container: exclusions first, then its
// namespace's SLUICE_SHIPPER_TENANT_LABEL, then the SLUICE_SHIPPER_TENANT_MAP
// rules, then the namespace name (see TenantMapper.Tenant). A label that is
// not a valid tenant id is ignored (and logged).
func (sh *Shipper) tenantFor(namespace, pod string) (string, bool, error) {
	name, ok, err := sh.mapper.Tenant(namespace, pod)
	if err == nil && !ok {
		return "", false, nil // excluded
	}
	if sh.kube != nil && sh.cfg.TenantLabel != "" {
		if ns := sh.kube.namespace(namespace); ns != nil && ns.tenant != "" {
			verr := kafka.ValidateTenant(ns.tenant)
			if verr == nil {
				return ns.tenant, true, nil
			}
			sh.logLimited("tenantlabel:"+namespace, "the namespace's tenant label is not a valid tenant id; ignored",
				"namespace", namespace, "label", sh.cfg.TenantLabel, "err", verr)
		}
	}
	return name, ok, err
}

// refreshMeta looks the follower's pod up again when the cache changed (one
// atomic load otherwise), or while the follower waits for its pod. It returns
// when to look again if the follower should wait (its pod is not known yet,
// and SLUICE_SHIPPER_METADATA_WAIT has not passed), else zero. It also
// notes the tenant the namespace's labels now say (switchTo).
func (s *follower) refreshMeta() (waitUntil time.Time) {
	k := s.sh.kube
	g := k.gen.Load()
	if g == s.metaGen && s.metaState != metaWaiting {
		return time.Time{}
	}
	s.metaGen = g
	pod, ns, ready := k.lookup(s.meta)
	m := s.sh.m.metadataLookups
	switch {
	case pod != nil && (ready || s.metaState != metaWaiting):
		m.WithLabelValues("hit").Inc()
		s.setMeta(pod, ns)
	case s.metaState == metaWaiting:
		if until := s.metaSince.Add(s.sh.cfg.MetadataWait); k.waitable() && time.Now().Before(until) {
			m.WithLabelValues("miss").Inc()
			return until
		}
		if pod != nil { // its CronJob or namespace not known yet: what there is
			m.WithLabelValues("hit").Inc()
			s.setMeta(pod, ns)
			break
		}
		m.WithLabelValues("partial").Inc()
		s.metaState, s.metaFlag = metaPartial, schemas.MetadataPartial
		s.metaWait.Store(false)
		s.overhead = s.costBeyondMessage()
		s.sh.logLimited("metadata:"+s.meta.Namespace, "pod not in the Kubernetes metadata cache; its lines are shipped with what the log path says (metadata=partial) until it is",
			"namespace", s.meta.Namespace, "pod", s.meta.Pod, "container", s.meta.Container)
	default:
		if pod == nil {
			m.WithLabelValues("miss").Inc()
		}
		// Metadata known before (or partial) stays as it is.
	}
	if ns != nil {
		name, ok, err := s.sh.tenantFor(s.meta.Namespace, s.meta.Pod)
		s.switchTo = ""
		if err == nil && ok && name != s.t.name {
			s.switchTo = name
		}
	}
	return time.Time{}
}

// setMeta makes the follower's records carry its pod's metadata.
func (s *follower) setMeta(pod *podMeta, ns *nsMeta) {
	k := &s.k8s
	k.Labels, k.Annotations = pod.labels, pod.annotations
	k.ContainerImage = pod.images[s.meta.Container]
	k.Workload = pod.workload
	if k.PodID == "" {
		k.PodID = pod.uid
	}
	k.NamespaceLabels = nil
	if ns != nil {
		k.NamespaceLabels = ns.labels
	}
	// Encoded once here, not for every line: sorting and writing a pod's
	// labels was most of what metadata cost per line. A fresh encoding, so
	// records already built keep theirs.
	k.CacheEncoding()
	s.metaState, s.metaFlag = metaFull, ""
	s.metaWait.Store(false)
	s.overhead = s.costBeyondMessage()
}

// switchTenant moves the follower to the tenant its namespace's labels name
// now, at a point where nothing read is left with the old one: no message
// being joined, nothing in flight, no failure to recover from. Lines
// already read went (or, after a failure, go again) to the old tenant's
// topic; the lines read from here on go to the new one's, and the
// checkpoint, which is per file, moves on as before. switched says it
// happened; wait that the follower waits for its last acknowledgements.
func (s *follower) switchTenant() (switched, wait bool) {
	if s.switchTo == s.t.name {
		s.switchTo = ""
		return false, false
	}
	if s.groups[0] != nil || s.groups[1] != nil || s.overlong != nil || s.probing || s.failure() != nil {
		return false, false // once the message is whole, or the failure recovered
	}
	if !s.idleForAcks() {
		return false, true
	}
	old, nt := s.t, s.sh.tenant(s.switchTo)
	old.gate.drop(s)
	s.releaseCredit(0)
	s.needCredit = 0
	s.mu.Lock()
	s.t = nt
	s.mu.Unlock()
	s.switchTo = ""
	s.overhead = s.costBeyondMessage()
	s.sh.log.Info("the namespace's tenant changed; the container's next lines go to the new tenant",
		"namespace", s.meta.Namespace, "pod", s.meta.Pod, "container", s.meta.Container, "from", old.name, "to", nt.name, "topic", nt.topic)
	return true, false
}

// costBeyondMessage is what a record of the follower costs beyond its
// message: the metadata it carries (the source path twice over: link and
// target are of a size), the key, the fixed fields.
func (s *follower) costBeyondMessage() int64 {
	k := &s.k8s
	n := recordOverhead + 2*len(s.key) + len(s.recKey) + len(s.t.name) + len(s.sh.node) + len(s.sh.version) +
		len(k.NamespaceName) + len(k.PodName) + len(k.PodID) + len(k.ContainerName) + len(k.DockerID) +
		len(k.ContainerImage) + len(k.Workload.Kind) + len(k.Workload.Name) + len(s.metaFlag)
	for _, m := range [...]map[string]string{k.Labels, k.Annotations, k.NamespaceLabels} {
		for key, v := range m {
			n += len(key) + len(v) + 8
		}
	}
	return int64(n)
}
