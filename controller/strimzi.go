package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicelogs/sluice/internal/kafka"
)

// Strimzi makes a tenant's topics and user as Strimzi resources, KafkaTopic
// and KafkaUser, for clusters whose topics and users the Strimzi operators
// own (an administrator's direct changes would be reverted there). They
// are the objects the Helm chart's strimzi.tenants makes, from the same
// rights (kafka.TenantACLRules) and defaults.
//
// The objects carry no owner reference to the Tenant: garbage collection
// would delete the KafkaTopics, and with them the topics' data, whatever
// deleteData says. The Tenant's finalizer removes them instead.
type Strimzi struct {
	Client client.Client
	// Namespace holds the KafkaTopics and KafkaUsers: one the Strimzi
	// entity operator watches.
	Namespace string
	// Cluster is the Kafka resource they belong to (label
	// strimzi.io/cluster).
	Cluster string
	// APIVersion is kafka.strimzi.io/v1beta2, or kafka.strimzi.io/v1 on
	// releases that dropped v1beta2.
	APIVersion string
}

const (
	strimziClusterLabel = "strimzi.io/cluster"
	// strimziManaged=false tells the topic operator to leave the topic in
	// Kafka when its KafkaTopic is deleted.
	strimziManaged = "strimzi.io/managed"
	// strimziPasswordKey is the key of the password in the Secret a
	// KafkaUser takes its password from.
	strimziPasswordKey = "password"
)

func (s *Strimzi) gvk(kind string) schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(s.APIVersion, kind)
}

// topicObjectName is a KafkaTopic's name for topic: Kubernetes names are
// lowercase and have no underscore, as the chart names them.
func topicObjectName(topic string) string {
	return strings.ReplaceAll(strings.ToLower(topic), "_", "-")
}

// passwordSecretName is the Secret, in the Strimzi namespace, the tenant's
// KafkaUser takes its password from: Strimzi reads it there only.
func passwordSecretName(id string) string { return "sluice-tenant-" + id }

// provision makes or updates the tenant's KafkaTopics and KafkaUser and
// returns those the Strimzi operators have not reported Ready yet.
func (s *Strimzi) provision(ctx context.Context, topics kafka.Topics, id string, spec kafka.TenantSpec) (pending []string, err error) {
	data := kafka.TenantTopics(topics, id)
	for _, ds := range spec.Datasets {
		data = append(data, topics.ParsedDataset(id, ds))
	}
	var objs []*unstructured.Unstructured
	for _, t := range data {
		config := map[string]any{}
		if spec.Retention > 0 {
			config["retention.ms"] = strconv.FormatInt(spec.Retention.Milliseconds(), 10)
		}
		objs = append(objs, s.topic(id, t, spec.Partitions, spec.ReplicationFactor, config))
	}
	for _, t := range kafka.TenantStateTopics(topics, id) {
		config := map[string]any{}
		for k, v := range kafka.CompactedConfigs() {
			config[k] = *v
		}
		// One partition: every reader sees every change in order.
		objs = append(objs, s.topic(id, t, 1, spec.ReplicationFactor, config))
	}
	user, err := s.user(ctx, topics, id, spec)
	if err != nil {
		return nil, err
	}
	objs = append(objs, user)
	for _, o := range objs {
		ready, err := s.apply(ctx, id, o)
		if err != nil {
			return nil, err
		}
		if !ready {
			pending = append(pending, o.GetKind()+" "+o.GetName())
		}
	}
	return pending, nil
}

// topic is the KafkaTopic of one of tenant id's topics; partitions and
// replicas below 1 leave them to the cluster's defaults.
func (s *Strimzi) topic(id, name string, partitions int32, replicas int16, config map[string]any) *unstructured.Unstructured {
	spec := map[string]any{"topicName": name, "config": config}
	if partitions > 0 {
		spec["partitions"] = int64(partitions)
	}
	if replicas > 0 {
		spec["replicas"] = int64(replicas)
	}
	return s.object("KafkaTopic", topicObjectName(name), id, spec)
}

// user is the tenant's KafkaUser: SCRAM-SHA-512, the ACLs of
// kafka.TenantACLRules, and the quotas of the spec. With a password, it is
// put in a Secret beside the KafkaUser for Strimzi to set; without one,
// Strimzi makes a password (in its Secret named after the user).
func (s *Strimzi) user(ctx context.Context, topics kafka.Topics, id string, spec kafka.TenantSpec) (*unstructured.Unstructured, error) {
	auth := map[string]any{"type": "scram-sha-512"}
	if spec.Password != "" {
		if err := s.passwordSecret(ctx, id, spec.Password); err != nil {
			return nil, err
		}
		auth["password"] = map[string]any{"valueFrom": map[string]any{"secretKeyRef": map[string]any{
			"name": passwordSecretName(id), "key": strimziPasswordKey}}}
	}
	var acls []any
	for _, r := range kafka.TenantACLRules(topics, id) {
		acls = append(acls, strimziACL(r))
	}
	userSpec := map[string]any{
		"authentication": auth,
		"authorization":  map[string]any{"type": "simple", "acls": acls},
	}
	quotas := map[string]any{}
	if spec.ProducerByteRate > 0 {
		quotas["producerByteRate"] = int64(spec.ProducerByteRate)
	}
	if spec.ConsumerByteRate > 0 {
		quotas["consumerByteRate"] = int64(spec.ConsumerByteRate)
	}
	if spec.ControllerMutationRate > 0 {
		quotas["controllerMutationRate"] = spec.ControllerMutationRate
	}
	if len(quotas) > 0 {
		userSpec["quotas"] = quotas
	}
	return s.object("KafkaUser", id, id, userSpec), nil
}

// strimziACL is r as an entry of a KafkaUser's simple authorization.
func strimziACL(r kafka.ACLRule) map[string]any {
	pattern := "literal"
	if r.Prefixed {
		pattern = "prefix"
	}
	var ops []any
	for _, op := range r.Operations {
		ops = append(ops, strimziOperation(op))
	}
	return map[string]any{
		"resource":   map[string]any{"type": r.Resource, "name": r.Name, "patternType": pattern},
		"operations": ops,
		"host":       "*",
	}
}

// strimziOperation is an ACL operation as Strimzi spells it: Write,
// DescribeConfigs, ...
func strimziOperation(op kadm.ACLOperation) string {
	var b strings.Builder
	for _, part := range strings.Split(strings.ToLower(op.String()), "_") {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// passwordSecret keeps the Secret the tenant's KafkaUser takes its
// password from, refusing one the controller did not make for the tenant.
func (s *Strimzi) passwordSecret(ctx context.Context, id, password string) error {
	var sec corev1.Secret
	key := client.ObjectKey{Namespace: s.Namespace, Name: passwordSecretName(id)}
	err := s.Client.Get(ctx, key, &sec)
	switch {
	case apierrors.IsNotFound(err):
		sec = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
				Labels:      map[string]string{managedByLabel: managedBy, TenantLabel: id},
				Annotations: map[string]string{tenantAnnotation: id}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{strimziPasswordKey: []byte(password)},
		}
		if err := s.Client.Create(ctx, &sec); err != nil {
			return fmt.Errorf("create secret %s: %w", key, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read secret %s: %w", key, err)
	case sec.Labels[managedByLabel] != managedBy || sec.Annotations[tenantAnnotation] != id:
		return fmt.Errorf("secret %s exists and was not made for tenant %s by this controller", key, id)
	case string(sec.Data[strimziPasswordKey]) == password:
		return nil
	}
	sec.Data = map[string][]byte{strimziPasswordKey: []byte(password)}
	if err := s.Client.Update(ctx, &sec); err != nil {
		return fmt.Errorf("update secret %s: %w", key, err)
	}
	return nil
}

// object is a Strimzi resource of tenant id in the Strimzi namespace.
func (s *Strimzi) object(kind, name, id string, spec map[string]any) *unstructured.Unstructured {
	// Through JSON, as the API server stores it: integers become int64
	// (apimachinery's JSON reader does that), so that a spec read back
	// compares equal to the one written.
	raw, err := json.Marshal(spec)
	if err != nil {
		panic(err) // cannot fail: strings, numbers, maps and slices
	}
	var normal map[string]any
	if err := utiljson.Unmarshal(raw, &normal); err != nil {
		panic(err)
	}
	o := &unstructured.Unstructured{Object: map[string]any{"spec": normal}}
	o.SetGroupVersionKind(s.gvk(kind))
	o.SetNamespace(s.Namespace)
	o.SetName(name)
	o.SetLabels(map[string]string{strimziClusterLabel: s.Cluster, TenantLabel: id, managedByLabel: managedBy})
	return o
}

// apply creates want, or brings the existing object's spec and labels to
// it, and says whether its operator reports it Ready for its current
// generation. An object of the same name that is not tenant id's is
// refused, not taken over.
func (s *Strimzi) apply(ctx context.Context, id string, want *unstructured.Unstructured) (ready bool, err error) {
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(want.GroupVersionKind())
	err = s.Client.Get(ctx, client.ObjectKeyFromObject(want), cur)
	if apierrors.IsNotFound(err) {
		if err := s.Client.Create(ctx, want); err != nil {
			return false, fmt.Errorf("create %s %s/%s: %w", want.GetKind(), want.GetNamespace(), want.GetName(), err)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s %s/%s: %w", want.GetKind(), want.GetNamespace(), want.GetName(), err)
	}
	if cur.GetLabels()[TenantLabel] != id {
		return false, fmt.Errorf("%s %s/%s exists and is not tenant %s's (label %s): choose another tenant id or remove it",
			cur.GetKind(), cur.GetNamespace(), cur.GetName(), id, TenantLabel)
	}
	labels := cur.GetLabels()
	changed := false
	for k, v := range want.GetLabels() {
		if labels[k] != v {
			labels[k], changed = v, true
		}
	}
	wantSpec, _, _ := unstructured.NestedMap(want.Object, "spec")
	curSpec, _, _ := unstructured.NestedMap(cur.Object, "spec")
	if kind := want.GetKind(); kind == "KafkaTopic" {
		// Partitions only grow (Kafka cannot take them away), and a
		// topic's replicas are changed by Strimzi's own procedure, not
		// by an edit: keep what is there when it is more, or set.
		keepAtLeast(wantSpec, curSpec, "partitions")
		if _, ok := curSpec["replicas"]; ok {
			wantSpec["replicas"] = curSpec["replicas"]
		}
	}
	if !equality.Semantic.DeepEqual(wantSpec, curSpec) {
		cur.Object["spec"], changed = wantSpec, true
	}
	if changed {
		cur.SetLabels(labels)
		if err := s.Client.Update(ctx, cur); err != nil {
			return false, fmt.Errorf("update %s %s/%s: %w", cur.GetKind(), cur.GetNamespace(), cur.GetName(), err)
		}
		return false, nil
	}
	return strimziReady(cur), nil
}

// keepAtLeast keeps cur's value of an integer field when it is above
// want's.
func keepAtLeast(want, cur map[string]any, field string) {
	c, ok1 := cur[field].(int64)
	w, ok2 := want[field].(int64)
	if ok1 && (!ok2 || c > w) {
		want[field] = c
	}
}

// strimziReady says whether the operator reports o Ready for its current
// generation.
func strimziReady(o *unstructured.Unstructured) bool {
	observed, _, _ := unstructured.NestedInt64(o.Object, "status", "observedGeneration")
	if observed < o.GetGeneration() {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			return m["status"] == "True"
		}
	}
	return false
}

// remove deletes the tenant's KafkaUser, its password Secret and its
// KafkaTopics. Unless deleteData, each KafkaTopic is first annotated
// strimzi.io/managed=false, the topic operator's way of deleting a
// KafkaTopic while keeping its topic and data; the annotation is written
// before the delete, so the operator sees it when it handles the
// deletion.
func (s *Strimzi) remove(ctx context.Context, id string, deleteData bool) error {
	user := &unstructured.Unstructured{}
	user.SetGroupVersionKind(s.gvk("KafkaUser"))
	user.SetNamespace(s.Namespace)
	user.SetName(id)
	if err := s.deleteIfOurs(ctx, id, user); err != nil {
		return err
	}
	sec := &corev1.Secret{}
	err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: passwordSecretName(id)}, sec)
	if err == nil && sec.Annotations[tenantAnnotation] == id {
		if err := s.Client.Delete(ctx, sec); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete secret %s/%s: %w", sec.Namespace, sec.Name, err)
		}
	} else if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("read secret %s/%s: %w", s.Namespace, passwordSecretName(id), err)
	}

	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(s.gvk("KafkaTopicList"))
	if err := s.Client.List(ctx, list, client.InNamespace(s.Namespace), client.MatchingLabels{TenantLabel: id, managedByLabel: managedBy}); err != nil {
		return fmt.Errorf("list the KafkaTopics of tenant %s: %w", id, err)
	}
	for i := range list.Items {
		kt := &list.Items[i]
		if !deleteData && kt.GetAnnotations()[strimziManaged] != "false" {
			ann := kt.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann[strimziManaged] = "false"
			kt.SetAnnotations(ann)
			if err := s.Client.Update(ctx, kt); err != nil {
				return fmt.Errorf("unmanage KafkaTopic %s/%s before deleting it: %w", kt.GetNamespace(), kt.GetName(), err)
			}
		}
		if err := s.Client.Delete(ctx, kt); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete KafkaTopic %s/%s: %w", kt.GetNamespace(), kt.GetName(), err)
		}
	}
	return nil
}

// deleteIfOurs deletes o when it exists and is tenant id's.
func (s *Strimzi) deleteIfOurs(ctx context.Context, id string, o *unstructured.Unstructured) error {
	err := s.Client.Get(ctx, client.ObjectKeyFromObject(o), o)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
	}
	if o.GetLabels()[TenantLabel] != id {
		return nil // not ours: left alone
	}
	if err := s.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
	}
	return nil
}
