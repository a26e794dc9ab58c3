package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/sluicelogs/sluice/gateway"
	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

func gatewayCommand() *cli.Command {
	return serviceCommand("gateway", "take logs over HTTP (OTLP, lines) and produce them to the tenant's raw topic as the tenant",
		"Serves OTLP/HTTP logs on POST /v1/logs (protobuf or JSON, gzip) and lines on POST /v1/lines\n"+
			"(a JSON object or a text record per line), and produces them to <prefix>.raw.<tenant> in the\n"+
			"shipper's record format. Requests authenticate with the tenant's Kafka user name and password\n"+
			"(HTTP basic authentication, or a bearer token of SLUICE_GATEWAY_TOKENS_FILE); the gateway produces\n"+
			"as that user, so Kafka's ACLs and quotas decide. A request is answered 200 once Kafka acknowledged\n"+
			"every record of it. Stateless: scale by adding replicas.",
		func(c *gateway.Config) telemetry.Config { return c.Telemetry },
		func(ctx context.Context, cfg gateway.Config, st stage) error {
			// The gateway's live heap is small (the requests in flight) and
			// each request allocates its decoded message and records, so at
			// GOGC=100 it collects very often: on BenchmarkOTLPHTTP GOGC=200
			// costs 25-30% less CPU per record for about 13 MB more memory.
			// The in-flight bytes stay bounded (SLUICE_GATEWAY_MAX_INFLIGHT_BYTES),
			// and GOMEMLIMIT, which the chart sets from the memory limit,
			// makes the collector work harder near the limit. An explicit
			// GOGC wins. (The shipper keeps GOGC=100: it runs on every node.)
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(200)
			}
			g, err := gateway.New(cfg, gateway.Options{Logger: st.log, Registerer: st.reg, Ready: st.ready, Version: version})
			if err != nil {
				return err
			}
			return g.Run(ctx)
		})
}
