package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicelogs/sluice/internal/kafka"
)

// Scenario is one load test, read from a small YAML file (loadtest/scenarios).
type Scenario struct {
	Name string `yaml:"name"`
	// Duration is how long the simulated containers write.
	Duration Duration `yaml:"duration"`
	// Rate is the number of log lines per second over all nodes.
	Rate int `yaml:"rate"`
	// Nodes is the number of simulated nodes; each has its own shipper.
	Nodes int `yaml:"nodes"`
	// Containers is the number of containers per node, spread over the
	// tenants (one namespace per tenant).
	Containers int `yaml:"containers"`
	// Tenants are the tenants (namespaces) the containers belong to; each
	// gets a pipeline from Pipelines, or passes through.
	Tenants []string `yaml:"tenants"`
	// Mix says what the containers write.
	Mix Mix `yaml:"mix"`
	// RotateBytes rotates a container's file, kubelet-style, when it grows
	// past it.
	RotateBytes int64 `yaml:"rotate_bytes"`
	// RouterReplicas and IndexerReplicas are the processes of each
	// consumer group.
	RouterReplicas  int `yaml:"router_replicas"`
	IndexerReplicas int `yaml:"indexer_replicas"`
	// DrainTimeout bounds the wait, after writing stops, for every line to
	// be indexed or dead-lettered.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// LatencySampleEvery samples one line in this many for end-to-end
	// latency (written to searchable).
	LatencySampleEvery int `yaml:"latency_sample_every"`
	// Faults are injected while the containers write.
	Faults Faults `yaml:"faults"`
}

// Mix is the shape of what containers write. Fractions are of log lines.
type Mix struct {
	// JSON application log lines; the rest, after the other kinds, are
	// plain text.
	JSON float64 `yaml:"json"`
	// StackTrace lines start a multi-line Java stack trace (each of its
	// lines counts as a line).
	StackTrace float64 `yaml:"stack_trace"`
	// Large lines are longer than 16 KiB: split into partial lines (CRI P/F
	// or docker's 16 KiB entries) that the shipper joins.
	Large float64 `yaml:"large"`
	// Malformed lines fail their tenant's parse step: they go to the
	// tenant's dead-letter topic with a reason.
	Malformed float64 `yaml:"malformed"`
	// Docker is the fraction of containers that write docker json-file
	// logs instead of CRI.
	Docker float64 `yaml:"docker"`
}

// Faults are what goes wrong during a run.
type Faults struct {
	// Kill kills a stage's process with SIGKILL every so often and starts
	// it again at once.
	Kill []KillFault `yaml:"kill"`
	// KafkaOutage stops the Kafka listener for a while.
	KafkaOutage *Window `yaml:"kafka_outage"`
	// Elasticsearch makes the store answer with errors.
	Elasticsearch *ESFault `yaml:"elasticsearch"`
	// Burst writes at another rate for a while.
	Burst *Burst `yaml:"burst"`
}

// KillFault kills one stage's processes (all replicas, one at a time).
type KillFault struct {
	Stage string   `yaml:"stage"` // shipper, router or indexer
	Every Duration `yaml:"every"`
}

// Window is a period of the run, from At after the start, lasting For.
type Window struct {
	At  Duration `yaml:"at"`
	For Duration `yaml:"for"`
}

// ESFault is the store's fault injection for the whole run.
type ESFault struct {
	Status   int     `yaml:"status"`   // 429 or 503
	Requests float64 `yaml:"requests"` // fraction of requests refused whole
	Items    float64 `yaml:"items"`    // fraction of bulk items refused with 429
}

// Burst writes at Rate during its window.
type Burst struct {
	Window `yaml:",inline"`
	Rate   int `yaml:"rate"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ReadScenario reads and validates a scenario file. Unknown keys are errors.
func ReadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseScenario(b)
}

// ParseScenario parses and validates a scenario, filling in defaults.
func ParseScenario(b []byte) (*Scenario, error) {
	s := &Scenario{
		Nodes: 1, Containers: 8, RotateBytes: 10 << 20, RouterReplicas: 1, IndexerReplicas: 1,
		DrainTimeout: Duration(5 * time.Minute), LatencySampleEvery: 100,
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return s, s.Validate()
}

// Validate names every problem of s.
func (s *Scenario) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Name == "" {
		bad("name: empty")
	}
	if s.Duration <= 0 {
		bad("duration: must be positive")
	}
	if s.Rate < 1 {
		bad("rate: must be at least 1 line per second")
	}
	if s.Nodes < 1 || s.Nodes > 64 {
		bad("nodes: %d, want 1 to 64", s.Nodes)
	}
	if s.Containers < len(s.Tenants) || s.Containers > 1000 {
		bad("containers: %d per node, want one per tenant at least and at most 1000", s.Containers)
	}
	if len(s.Tenants) == 0 {
		bad("tenants: none")
	}
	for i, t := range s.Tenants {
		if err := kafka.ValidateTenant(t); err != nil {
			bad("tenants[%d]: %v", i, err)
		}
		if slices.Contains(s.Tenants[:i], t) {
			bad("tenants[%d]: %s twice", i, t)
		}
	}
	m := s.Mix
	for name, f := range map[string]float64{"json": m.JSON, "stack_trace": m.StackTrace, "large": m.Large, "malformed": m.Malformed, "docker": m.Docker} {
		if f < 0 || f > 1 {
			bad("mix.%s: %v, want a fraction from 0 to 1", name, f)
		}
	}
	if m.JSON+m.StackTrace+m.Large+m.Malformed > 1 {
		bad("mix: json + stack_trace + large + malformed exceed 1")
	}
	if s.RotateBytes < 64<<10 {
		bad("rotate_bytes: %d, want at least 64 KiB", s.RotateBytes)
	}
	if s.RouterReplicas < 1 || s.IndexerReplicas < 1 || s.RouterReplicas > 16 || s.IndexerReplicas > 16 {
		bad("router_replicas and indexer_replicas: 1 to 16")
	}
	if s.DrainTimeout <= 0 {
		bad("drain_timeout: must be positive")
	}
	if s.LatencySampleEvery < 1 {
		bad("latency_sample_every: must be at least 1")
	}
	for i, k := range s.Faults.Kill {
		if !slices.Contains([]string{"shipper", "router", "indexer"}, k.Stage) {
			bad("faults.kill[%d].stage: %q, want shipper, router or indexer", i, k.Stage)
		}
		if k.Every < Duration(time.Second) {
			bad("faults.kill[%d].every: at least 1s", i)
		}
	}
	if w := s.Faults.KafkaOutage; w != nil && (w.At < 0 || w.For <= 0) {
		bad("faults.kafka_outage: want at >= 0 and for > 0")
	}
	if e := s.Faults.Elasticsearch; e != nil {
		if e.Status != 429 && e.Status != 503 {
			bad("faults.elasticsearch.status: %d, want 429 or 503", e.Status)
		}
		if e.Requests < 0 || e.Requests >= 1 || e.Items < 0 || e.Items >= 1 {
			bad("faults.elasticsearch: requests and items are fractions below 1")
		}
	}
	if b := s.Faults.Burst; b != nil && (b.Rate < 1 || b.For <= 0 || b.At < 0) {
		bad("faults.burst: want rate >= 1, at >= 0 and for > 0")
	}
	return errors.Join(errs...)
}

// RateAt is the target rate (lines per second) at offset t into the run.
func (s *Scenario) RateAt(t time.Duration) int {
	if b := s.Faults.Burst; b != nil && t >= b.At.D() && t < b.At.D()+b.For.D() {
		return b.Rate
	}
	return s.Rate
}
