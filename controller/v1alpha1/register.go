package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is sluice.io/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: "sluice.io", Version: "v1alpha1"}

// AddToScheme registers Tenant and Pipeline (and their lists) in a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Tenant{}, &TenantList{}, &Pipeline{}, &PipelineList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
