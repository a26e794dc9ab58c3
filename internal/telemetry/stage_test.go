package telemetry

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestStageDefaults(t *testing.T) {
	log, reg, ready := StageDefaults(nil, nil, nil)
	if log == nil || reg == nil || ready == nil {
		t.Fatalf("StageDefaults(nil, nil, nil) left a nil: %v, %v, ready set %v", log, reg, ready != nil)
	}
	log.Info("discarded")
	ready(true)
	// Each call has a registry of its own: the same metric registers in two.
	c := func() prometheus.Collector {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"})
	}
	_, reg2, _ := StageDefaults(nil, nil, nil)
	if err := reg.Register(c()); err != nil {
		t.Fatal(err)
	}
	if err := reg2.Register(c()); err != nil {
		t.Fatalf("second registry: %v", err)
	}

	var buf bytes.Buffer
	myLog, myReg := slog.New(slog.NewTextHandler(&buf, nil)), prometheus.NewRegistry()
	called := false
	log, reg, ready = StageDefaults(myLog, myReg, func(bool) { called = true })
	ready(true)
	if log != myLog || reg != myReg || !called {
		t.Errorf("StageDefaults replaced what was set")
	}
}
