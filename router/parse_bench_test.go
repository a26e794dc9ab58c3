package router

import (
	"os"
	"testing"
)

// BenchmarkLoad measures loading a pipeline version (parse, compile, run
// its tests), which routers do on every config change.
func BenchmarkLoad(b *testing.B) {
	src, err := os.ReadFile("testdata/golden/shop/pipeline.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(src); err != nil {
			b.Fatal(err)
		}
	}
}
