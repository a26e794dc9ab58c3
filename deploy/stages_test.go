package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/shipper"
)

// stageNames are the stages a chart or compose service runs, by the
// subcommand that runs them.
var stageNames = []string{"shipper", "router", "indexer"}

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
