package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/sluicelogs/sluice/controller"
	"github.com/sluicelogs/sluice/gateway"
	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/shipper"
)

// stageNames are the stages a chart or compose service runs, by the
// subcommand that runs them.
var stageNames = []string{"shipper", "router", "indexer"}

// workloadNames are the stages, the ingest gateway and sluice-controller:
// what the chart runs.
var workloadNames = append(slices.Clone(stageNames), "gateway", "controller")

// valuesSections are the sections of values.yaml that may give examples of
// a container's env.
var valuesSections = append(slices.Clone(stageNames), "gateway")

// loadedStage is a stage's configuration loaded from a container's
// environment.
type loadedStage struct {
	settings []config.Setting
	// shutdown is the stage's SIGTERM timeout: the grace period of its pod
	// or container must be longer.
	shutdown time.Duration
	// checkpointDir is the shipper's checkpoint directory.
	checkpointDir string
	telemetryAddr string
}

// loadStage loads env into the configuration struct of stage as the stage
// does at startup and validates it. A SLUICE_ variable the stage does not
// know is an error (a misspelt setting would otherwise be ignored).
func loadStage(stage string, env map[string]string) (loadedStage, error) {
	switch stage {
	case "shipper":
		var c shipper.Config
		err := load(&c, env, c.Validate)
		return loadedStage{config.Describe(&c), c.ShutdownTimeout, c.CheckpointDir, c.Telemetry.Addr}, err
	case "router":
		var c router.Config
		err := load(&c, env, c.Validate)
		return loadedStage{config.Describe(&c), c.ShutdownTimeout, "", c.Telemetry.Addr}, err
	case "indexer":
		var c indexer.Config
		err := load(&c, env, c.Validate)
		return loadedStage{config.Describe(&c), c.ShutdownTimeout, "", c.Telemetry.Addr}, err
	case "gateway":
		var c gateway.Config
		err := load(&c, env, c.Validate)
		return loadedStage{config.Describe(&c), c.ShutdownTimeout, "", c.Telemetry.Addr}, err
	case "controller":
		// Stopping gives up the leader Lease at once: no drain.
		var c controller.Config
		err := load(&c, env, c.Validate)
		return loadedStage{config.Describe(&c), 0, "", c.Telemetry.Addr}, err
	}
	return loadedStage{}, fmt.Errorf("no stage %q", stage)
}

func load(cfg any, env map[string]string, validate func() error) error {
	known := map[string]bool{}
	for _, s := range config.Describe(cfg) {
		known[s.Name] = true
	}
	var unknown []string
	for name := range env {
		if strings.HasPrefix(name, config.Prefix) && !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("settings the stage does not have: %s", strings.Join(unknown, ", "))
	}
	if err := config.LoadFrom(context.Background(), cfg, envconfig.MapLookuper(env)); err != nil {
		return err
	}
	return validate()
}

// secretValue reports whether a setting holds a secret itself (the
// password, not the name of a file holding it).
func (s loadedStage) secretValue(name string) bool {
	for _, st := range s.settings {
		if st.Name == name {
			return st.Secret
		}
	}
	return false
}

// fileSettings returns the settings whose value is a file path the stage
// reads, with their values.
func (s loadedStage) fileSettings() map[string]string {
	files := map[string]string{}
	for _, st := range s.settings {
		if strings.HasSuffix(st.Name, "_FILE") && st.Value != "" {
			files[st.Name] = st.Value
		}
	}
	return files
}

// TestValuesEnvExamples checks the settings values.yaml gives as examples of
// a stage's env (comment lines "#   SLUICE_...: value" in the stage's
// section): each is a setting of that stage, and together they are valid.
func TestValuesEnvExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`^([a-zA-Z]+):`)
	example := regexp.MustCompile(`^\s*#\s+(SLUICE_[A-Z0-9_]+): (\S+)$`)
	examples := map[string]map[string]string{}
	stage := ""
	for _, l := range strings.Split(string(b), "\n") {
		if m := section.FindStringSubmatch(l); m != nil {
			stage = m[1]
		}
		if m := example.FindStringSubmatch(l); m != nil {
			if !slices.Contains(valuesSections, stage) {
				t.Errorf("values.yaml: example %s outside a stage's section", m[1])
				continue
			}
			if examples[stage] == nil {
				examples[stage] = map[string]string{}
			}
			examples[stage][m[1]] = m[2]
		}
	}
	if len(examples["shipper"]) == 0 {
		t.Fatal("values.yaml: no example of the shipper's env found")
	}
	for stage, env := range examples {
		if stage == "gateway" {
			env["SLUICE_KAFKA_SASL_MECHANISM"] = "SCRAM-SHA-512" // the chart's default
		} else {
			env["SLUICE_NODE_NAME"] = "node-a" // the chart sets it from spec.nodeName
		}
		if _, err := loadStage(stage, env); err != nil {
			t.Errorf("values.yaml: the %s env examples: %v", stage, err)
		}
	}
}
