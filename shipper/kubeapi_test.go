package shipper

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// clientsetAPI is the kubeAPI over a client-go clientset, for the unit
// tests' fake clientset: its objects become the shipper's own types as an
// API server's JSON would.
type clientsetAPI struct{ cs kubernetes.Interface }

func (a clientsetAPI) Pods(node string) cache.ListerWatcher {
	sel := fields.OneTermEqualSelector("spec.nodeName", node).String()
	pods := a.cs.CoreV1().Pods(metav1.NamespaceAll)
	return a.listWatch(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		o.FieldSelector = sel
		return pods.List(ctx, o)
	}, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.FieldSelector = sel
		return pods.Watch(ctx, o)
	})
}

func (a clientsetAPI) Namespaces() cache.ListerWatcher {
	ns := a.cs.CoreV1().Namespaces()
	return a.listWatch(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return ns.List(ctx, o)
	}, ns.Watch)
}

func (a clientsetAPI) Job(ctx context.Context, namespace, name string) (metav1.Object, error) {
	return a.cs.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (a clientsetAPI) listWatch(list cache.ListWithContextFunc, watchFn cache.WatchFuncWithContext) cache.ListerWatcher {
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			obj, err := list(ctx, o)
			if err != nil {
				return nil, err
			}
			return asKube(obj), nil
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w, err := watchFn(ctx, o)
			if err != nil {
				return nil, err
			}
			return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
				e.Object = asKube(e.Object)
				return e, true
			}), nil
		},
	}, a.cs)
}

// asKube turns client-go's pods and namespaces into the shipper's types,
// through JSON.
func asKube(obj runtime.Object) runtime.Object {
	var out runtime.Object
	switch obj.(type) {
	case *corev1.Pod:
		out = &kubePod{}
	case *corev1.PodList:
		out = &kubePodList{}
	case *corev1.Namespace:
		out = &kubeObject{}
	case *corev1.NamespaceList:
		out = &kubeObjectList{}
	default:
		return obj
	}
	data, err := json.Marshal(obj)
	if err == nil {
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		panic(fmt.Sprintf("asKube %T: %v", obj, err))
	}
	return out
}
