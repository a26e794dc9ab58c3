package loadtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestScenarioFiles(t *testing.T) {
	files, err := filepath.Glob("scenarios/*.yaml")
	if err != nil || len(files) < 6 {
		t.Fatalf("scenario files: %v %v", files, err)
	}
	names := map[string]bool{}
	for _, f := range files {
		s, err := ReadScenario(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".yaml"); s.Name != want || names[s.Name] {
			t.Errorf("%s: name %q, want %q (unique)", f, s.Name, want)
		}
		names[s.Name] = true
	}
}

func TestParseScenario(t *testing.T) {
	s, err := ParseScenario([]byte("name: x\nduration: 10s\nrate: 100\ntenants: [a]\nfaults: {burst: {at: 2s, for: 3s, rate: 1000}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Nodes != 1 || s.RouterReplicas != 1 || s.DrainTimeout.D() != 5*time.Minute || s.LatencySampleEvery != 100 {
		t.Errorf("defaults not applied: %+v", s)
	}
	for at, want := range map[time.Duration]int{0: 100, 2 * time.Second: 1000, 4999 * time.Millisecond: 1000, 5 * time.Second: 100} {
		if got := s.RateAt(at); got != want {
			t.Errorf("RateAt(%s) = %d, want %d", at, got, want)
		}
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":    {"name: x\nduration: 1s\nrate: 1\ntenants: [a]\nrat: 2\n", "field rat not found"},
		"bad duration":   {"name: x\nduration: soon\nrate: 1\ntenants: [a]\n", "invalid duration"},
		"bad tenant":     {"name: x\nduration: 1s\nrate: 1\ntenants: [A_b]\n", "tenants[0]"},
		"mix over 1":     {"name: x\nduration: 1s\nrate: 1\ntenants: [a]\nmix: {json: 0.8, large: 0.3}\n", "exceed 1"},
		"bad kill":       {"name: x\nduration: 1s\nrate: 1\ntenants: [a]\nfaults: {kill: [{stage: kafka, every: 5s}]}\n", "faults.kill[0].stage"},
		"bad es status":  {"name: x\nduration: 1s\nrate: 1\ntenants: [a]\nfaults: {elasticsearch: {status: 500, requests: 0.1}}\n", "429 or 503"},
		"no rate":        {"name: x\nduration: 1s\ntenants: [a]\n", "rate"},
		"few containers": {"name: x\nduration: 1s\nrate: 1\ntenants: [a, b, c]\ncontainers: 2\n", "containers"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseScenario([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzParseScenario: any input gives a scenario or an error, never a
// panic, and a scenario that parses validates.
func FuzzParseScenario(f *testing.F) {
	for _, name := range []string{"short", "kafka-outage", "chaos-kill9"} {
		if b, err := os.ReadFile(filepath.Join("scenarios", name+".yaml")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("name: x\nduration: 1s\nrate: 1\ntenants: [a]\nfaults: {burst: {at: 0s, for: 1s, rate: 5}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseScenario(b)
		if err == nil {
			if verr := s.Validate(); verr != nil {
				t.Fatalf("parsed but invalid: %v", verr)
			}
			_ = s.RateAt(s.Duration.D() / 2)
		}
	})
}
