package demo

import (
	corev1 "k8s.io/api/core/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"

	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/internal/nodelog"
)

// TestDemoWrites: the demo writes CRI lines for its pods, partial lines
// included, and rotates.
func TestDemoWrites(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}
	d := &Workload{Node: node, Rate: -1, Limit: 3000, RotateBytes: 64 << 10}
	if err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	links, _ := filepath.Glob(node.ContainersGlob())
	if len(links) != 4 {
		t.Fatalf("%d containers: %v", len(links), links)
	}
	var all strings.Builder
	files, _ := filepath.Glob(filepath.Join(node.Root, "var", "log", "pods", "*", "*", "*"))
	rotated := 0
	for _, f := range files {
		if strings.Contains(filepath.Base(f), ".log.") {
			rotated++
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	for _, want := range []string{" stdout F {\"level\"", " stderr F \tat shop.cart", " P {\"level\":\"warn\"", "AUDIT refund", "upstream timed out"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no line with %q", want)
		}
	}
	if rotated == 0 {
		t.Error("nothing rotated")
	}
}

// TestPodsDeclared: every pod the workload writes for is declared in
// PodsYAML, in its namespace, with its container and the labels a
// Deployment's pod has.
func TestPodsDeclared(t *testing.T) {
	declared := map[string]corev1.Pod{}
	dec := k8syaml.NewYAMLOrJSONDecoder(strings.NewReader(PodsYAML), 4096)
	for {
		var p corev1.Pod
		if err := dec.Decode(&p); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if p.Kind == "Pod" {
			declared[p.Namespace+"/"+p.Name] = p
		}
	}
	for _, want := range pods {
		p, ok := declared[want.Namespace+"/"+want.Pod]
		if !ok {
			t.Errorf("pod %s/%s is not declared", want.Namespace, want.Pod)
			continue
		}
		if len(p.Spec.Containers) != 1 || p.Spec.Containers[0].Name != want.Container || p.Spec.Containers[0].Image == "" {
			t.Errorf("pod %s: containers %+v, want %s with an image", want.Pod, p.Spec.Containers, want.Container)
		}
		if p.Labels["app"] == "" || len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Name != p.Labels["app"]+"-"+p.Labels["pod-template-hash"] {
			t.Errorf("pod %s: labels %v, owners %+v: not a Deployment's pod", want.Pod, p.Labels, p.OwnerReferences)
		}
	}
	if len(declared) != len(pods) {
		t.Errorf("%d pods declared, the workload has %d", len(declared), len(pods))
	}
}
