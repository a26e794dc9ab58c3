package router

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

// Config is the router's configuration, read from SLUICE_* environment
// variables (see internal/config).
type Config struct {
	Kafka     kafka.Config
	Telemetry telemetry.Config

	Group string `env:"ROUTER_GROUP, default=sluice-router" help:"Consumer group of the routers; every replica uses the same one."`
	ID    string `env:"ROUTER_ID" help:"This router's name, unique among the replicas (default: the host name, i.e. the pod name). It makes the transactional id <group>-<id> and names the router in pipeline status."`

	BatchRecords    int           `env:"ROUTER_BATCH_RECORDS, default=5000" help:"Most records consumed, transformed and produced in one Kafka transaction."`
	RescanInterval  time.Duration `env:"ROUTER_RESCAN_INTERVAL, default=5s" help:"How often topic metadata is refreshed: new <prefix>.raw.* topics are picked up, missing output topics noticed."`
	StatusInterval  time.Duration `env:"ROUTER_STATUS_INTERVAL, default=30s" help:"How often the router republishes which pipeline version it applies per tenant (also published at every change)."`
	ShutdownTimeout time.Duration `env:"ROUTER_SHUTDOWN_TIMEOUT, default=20s" help:"On SIGTERM, how long to wait for the transaction in progress to end."`
	TenantRetryMax  time.Duration `env:"ROUTER_TENANT_RETRY_MAX, default=30s" help:"Longest pause of a tenant whose output topics are missing or denied (doubling from 1s)."`
}

// Validate reports every problem, each naming the variable at fault.
func (c *Config) Validate() error {
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("SLUICE_%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Telemetry.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Group == "" {
		add("ROUTER_GROUP", "must not be empty")
	}
	if c.BatchRecords < 1 || c.BatchRecords > 1_000_000 {
		add("ROUTER_BATCH_RECORDS", "must be between 1 and 1000000, got %d", c.BatchRecords)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"ROUTER_RESCAN_INTERVAL", c.RescanInterval},
		{"ROUTER_STATUS_INTERVAL", c.StatusInterval},
		{"ROUTER_SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
		{"ROUTER_TENANT_RETRY_MAX", c.TenantRetryMax},
	} {
		if d.d <= 0 {
			add(d.name, "must be positive, got %s", d.d)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) id() string {
	if c.ID != "" {
		return c.ID
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "router"
}
