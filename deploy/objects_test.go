package deploy

import (
	"fmt"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// Short names of the types objects decode into.
type (
	corev1ConfigMap          = corev1.ConfigMap
	monitoringPrometheusRule = monitoringv1.PrometheusRule
)

// object is one rendered document decoded into its API type.
type object struct {
	kind, name string
	value      any // a pointer to a Kubernetes, prometheus-operator or Strimzi type
}

func (o object) String() string { return o.kind + "/" + o.name }

// kinds maps apiVersion/kind to a constructor of the type it decodes into.
// A kind the chart renders but this table lacks fails the test: every object
// is checked against its schema.
var kinds = map[string]func() any{
	"v1/ServiceAccount":                               func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                                    func() any { return new(corev1.ConfigMap) },
	"apps/v1/DaemonSet":                               func() any { return new(appsv1.DaemonSet) },
	"apps/v1/Deployment":                              func() any { return new(appsv1.Deployment) },
	"policy/v1/PodDisruptionBudget":                   func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2/HorizontalPodAutoscaler":          func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"scheduling.k8s.io/v1/PriorityClass":              func() any { return new(schedulingv1.PriorityClass) },
	"rbac.authorization.k8s.io/v1/ClusterRole":        func() any { return new(rbacv1.ClusterRole) },
	"rbac.authorization.k8s.io/v1/ClusterRoleBinding": func() any { return new(rbacv1.ClusterRoleBinding) },
	"rbac.authorization.k8s.io/v1/Role":               func() any { return new(rbacv1.Role) },
	"rbac.authorization.k8s.io/v1/RoleBinding":        func() any { return new(rbacv1.RoleBinding) },
	"monitoring.coreos.com/v1/PodMonitor":             func() any { return new(monitoringv1.PodMonitor) },
	"monitoring.coreos.com/v1/PrometheusRule":         func() any { return new(monitoringv1.PrometheusRule) },
	"monitoring.coreos.com/v1/ServiceMonitor":         func() any { return new(monitoringv1.ServiceMonitor) },
	"kafka.strimzi.io/v1beta2/KafkaTopic":             func() any { return new(kafkaTopic) },
	"kafka.strimzi.io/v1beta2/KafkaUser":              func() any { return new(kafkaUser) },
	// strimzi.apiVersion on Strimzi releases that have dropped v1beta2.
	"kafka.strimzi.io/v1/KafkaTopic": func() any { return new(kafkaTopic) },
	"kafka.strimzi.io/v1/KafkaUser":  func() any { return new(kafkaUser) },
	// The controller's admission webhook: its Service and configuration,
	// and its serving certificate (a Secret the chart makes, or a
	// cert-manager Certificate). Services of the workloads' telemetry
	// ports for a ServiceMonitor; the empty Secret of the Kafka CA that
	// Reflector fills.
	"v1/Service": func() any { return new(corev1.Service) },
	"admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration": func() any { return new(admissionregistrationv1.ValidatingWebhookConfiguration) },
	"v1/Secret": func() any { return new(corev1.Secret) },
	// The ingest gateway's optional Ingress.
	"networking.k8s.io/v1/Ingress":   func() any { return new(networkingv1.Ingress) },
	"cert-manager.io/v1/Certificate": func() any { return new(certificate) },
}

// decodeAll decodes every document strictly: a field the type does not have,
// a value of the wrong type or a duplicate key fails the test.
func decodeAll(t *testing.T, docs []string) []object {
	t.Helper()
	var objs []object
	seen := map[string]bool{}
	for _, doc := range docs {
		var head struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   metav1.ObjectMeta `json:"metadata"`
		}
		if err := sigsyaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		newValue, ok := kinds[head.APIVersion+"/"+head.Kind]
		if !ok {
			t.Fatalf("%s/%s %s: no API type to check it against (an unknown kind)", head.APIVersion, head.Kind, head.Metadata.Name)
		}
		v := newValue()
		if err := sigsyaml.UnmarshalStrict([]byte(doc), v); err != nil {
			t.Fatalf("%s %s does not match its API type: %v\n%s", head.Kind, head.Metadata.Name, err, doc)
		}
		o := object{kind: head.Kind, name: head.Metadata.Name, value: v}
		if seen[o.String()] {
			t.Fatalf("%s rendered twice", o)
		}
		seen[o.String()] = true
		if errs := validateName(head.Kind, head.Metadata.Name); errs != "" {
			t.Errorf("%s: %s", o, errs)
		}
		objs = append(objs, o)
	}
	return objs
}

// validateName checks metadata.name as the API server would: a DNS-1123
// subdomain (at most 253 characters of [a-z0-9.-]).
func validateName(kind, name string) string {
	if name == "" || len(name) > 253 {
		return "name is empty or longer than 253 characters"
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (r == '-' || r == '.') && i > 0 && i < len(name)-1
		if !ok {
			return fmt.Sprintf("name %q is not a DNS-1123 subdomain", name)
		}
	}
	if strings.Contains(name, "..") {
		return fmt.Sprintf("name %q is not a DNS-1123 subdomain", name)
	}
	return ""
}

// Strimzi publishes no Go types (its operators are Java), so these follow
// the kafka.strimzi.io/v1beta2 CRD schemas for the fields the chart may
// set; anything else fails strict decoding, and enumerations are checked
// in checkStrimzi.
type kafkaTopic struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TopicName  string            `json:"topicName,omitempty"`
		Partitions int32             `json:"partitions"`
		Replicas   int32             `json:"replicas"`
		Config     map[string]string `json:"config,omitempty"`
	} `json:"spec"`
}

type kafkaUser struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Authentication struct {
			Type string `json:"type"`
		} `json:"authentication"`
		Authorization struct {
			Type string       `json:"type"`
			ACLs []strimziACL `json:"acls"`
		} `json:"authorization"`
		Quotas *struct {
			ProducerByteRate       int64 `json:"producerByteRate,omitempty"`
			ConsumerByteRate       int64 `json:"consumerByteRate,omitempty"`
			RequestPercentage      int32 `json:"requestPercentage,omitempty"`
			ControllerMutationRate int64 `json:"controllerMutationRate,omitempty"`
		} `json:"quotas,omitempty"`
	} `json:"spec"`
}

type strimziACL struct {
	Resource struct {
		Type        string `json:"type"`
		Name        string `json:"name"`
		PatternType string `json:"patternType"`
	} `json:"resource"`
	Operations []string `json:"operations"`
	Host       string   `json:"host"`
}

// certificate is a cert-manager.io/v1 Certificate, for the fields the
// chart sets (cert-manager's Go types would bring its whole module).
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName string   `json:"secretName"`
		DNSNames   []string `json:"dnsNames"`
		Usages     []string `json:"usages,omitempty"`
		IssuerRef  struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Group string `json:"group"`
		} `json:"issuerRef"`
	} `json:"spec"`
}
