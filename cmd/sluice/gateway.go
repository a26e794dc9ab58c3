package main

import (
	"context"

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
			g, err := gateway.New(cfg, gateway.Options{Logger: st.log, Registerer: st.reg, Ready: st.ready, Version: version})
			if err != nil {
				return err
			}
			return g.Run(ctx)
		})
}
