package main

import (
	"context"

	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/router"
)

func routerCommand() *cli.Command {
	return serviceCommand("router", "apply each tenant's pipeline between its raw and parsed topics, in Kafka transactions",
		"Consumes <prefix>.raw.<tenant>, applies each tenant's pipeline from <prefix>.config and produces to\n"+
			"<prefix>.parsed.<tenant>[.<dataset>] or <prefix>.dlq.<tenant>, in Kafka transactions.",
		func(c *router.Config) telemetry.Config { return c.Telemetry },
		func(ctx context.Context, cfg router.Config, st stage) error {
			r, err := router.New(cfg, router.Options{Logger: st.log, Registerer: st.reg, Ready: st.ready})
			if err != nil {
				return err
			}
			return r.Run(ctx)
		})
}
