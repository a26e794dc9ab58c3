package eslite

import (
	"time"

	"github.com/sluicelogs/sluice/internal/config"
)

// Config holds the settings of the store `sluice dev` embeds
// (SLUICE_DEV_ES_*): its faults let a person, or a test of the whole
// pipeline, watch the indexer retry and pause.
type Config struct {
	FaultStatus   int           `env:"DEV_ES_FAULT_STATUS, default=503" help:"Status of requests answered with a fault: 429 or 503."`
	FaultRequests float64       `env:"DEV_ES_FAULT_REQUESTS, default=0" help:"Fraction (0 to 1) of requests, on every endpoint but GET /, answered with SLUICE_DEV_ES_FAULT_STATUS."`
	FaultItems    float64       `env:"DEV_ES_FAULT_ITEMS, default=0" help:"Fraction (0 to 1) of bulk items answered with a per-item 429."`
	Latency       time.Duration `env:"DEV_ES_LATENCY, default=0s" help:"Delay added before answering each request."`
}

// Validate reports every problem, each naming the variable at fault.
func (c *Config) Validate() error {
	var p config.Problems
	if c.FaultStatus != 429 && c.FaultStatus != 503 {
		p.Add(config.Var("DEV_ES_FAULT_STATUS"), "must be 429 or 503, got %d", c.FaultStatus)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"DEV_ES_FAULT_REQUESTS", c.FaultRequests}, {"DEV_ES_FAULT_ITEMS", c.FaultItems}} {
		if f.v < 0 || f.v > 1 {
			p.Add(config.Var(f.name), "must be between 0 and 1, got %v", f.v)
		}
	}
	if c.Latency < 0 {
		p.Add(config.Var("DEV_ES_LATENCY"), "must not be negative")
	}
	return p.Err()
}

// Faults returns the faults the settings ask for.
func (c *Config) Faults() Faults {
	return Faults{RequestStatus: c.FaultStatus, RequestFraction: c.FaultRequests, ItemFraction: c.FaultItems, Latency: c.Latency}
}
