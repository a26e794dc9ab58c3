package main

import (
	"context"
	"io"

	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/router"
)

func runRouter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runService(ctx, args, stdout, stderr, "router",
		"Consumes <prefix>.raw.<tenant>, applies each tenant's pipeline from <prefix>.config and produces to\n"+
			"<prefix>.parsed.<tenant>[.<stream>] or <prefix>.dlq.<tenant>, in Kafka transactions.",
		func(c *router.Config) telemetry.Config { return c.Telemetry },
		func(ctx context.Context, cfg router.Config, st stage) error {
			r, err := router.New(cfg, router.Options{Logger: st.log, Registerer: st.reg, Ready: st.ready})
			if err != nil {
				return err
			}
			return r.Run(ctx)
		})
}
