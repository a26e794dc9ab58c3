package kafka

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafkatest"
)

func TestLogger(t *testing.T) {
	const byDefault = kgo.LogLevel(-1) // use NewLogger rather than NewLoggerLevel
	tests := []struct {
		name    string
		level   kgo.LogLevel
		handler slog.Level
		logAt   kgo.LogLevel
		want    string // "" means nothing logged
	}{
		{name: "error", level: byDefault, logAt: kgo.LogLevelError, want: "level=ERROR"},
		{name: "warn", level: byDefault, logAt: kgo.LogLevelWarn, want: "level=WARN"},
		{name: "info suppressed by default", level: byDefault, logAt: kgo.LogLevelInfo},
		{name: "debug suppressed by default", level: byDefault, logAt: kgo.LogLevelDebug},
		{name: "info enabled", level: kgo.LogLevelInfo, logAt: kgo.LogLevelInfo, want: "level=INFO"},
		{name: "debug enabled", level: kgo.LogLevelDebug, logAt: kgo.LogLevelDebug, want: "level=DEBUG"},
		{name: "handler level still applies", level: kgo.LogLevelDebug, logAt: kgo.LogLevelWarn, handler: slog.LevelError},
		{name: "none", level: kgo.LogLevelNone, logAt: kgo.LogLevelError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			handler := tt.handler
			if handler == 0 {
				handler = slog.LevelDebug
			}
			sl := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: handler}))
			var l kgo.Logger
			if tt.level == byDefault {
				l = NewLogger(sl)
				if l.Level() != kgo.LogLevelWarn {
					t.Errorf("default Level() = %v, want WARN", l.Level())
				}
			} else {
				l = NewLoggerLevel(sl, tt.level)
			}
			l.Log(tt.logAt, "metadata update failed", "broker", 1, "err", "boom")
			out := b.String()
			if tt.want == "" {
				if out != "" {
					t.Errorf("logged %q, want nothing", out)
				}
				return
			}
			for _, want := range []string{tt.want, `msg="metadata update failed"`, "broker=1", "err=boom"} {
				if !strings.Contains(out, want) {
					t.Errorf("log %q lacks %q", out, want)
				}
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	cluster := kafkatest.Cluster(t, kafkatest.Topics(1, testTopic))
	reg := prometheus.NewRegistry()
	opts, err := Config{Brokers: cluster.ListenAddrs(), ClientID: "sluice-test", SASLMechanism: "none", TopicPrefix: "logs"}.Options()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.WithHooks(NewMetrics(reg)))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	found := false
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_kafka_connects_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "client_id" && lp.GetValue() == "sluice-test" && m.GetCounter().GetValue() > 0 {
					found = true
				}
			}
		}
	}
	if !found {
		t.Errorf("no sluice_kafka_connects_total{client_id=\"sluice-test\"} > 0 in %d families", len(mfs))
	}

	cl.Close()
	mfs, err = reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "sluice_kafka_") {
			t.Errorf("%s still registered after Close", mf.GetName())
		}
	}
}
