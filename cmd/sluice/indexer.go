package main

import (
	"context"

	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

func indexerCommand() *cli.Command {
	return serviceCommand("indexer", "bulk-write parsed topics to Elasticsearch daily indices (scale by adding replicas)",
		"Consumes <prefix>.parsed.<tenant>[.<dataset>] in a consumer group and bulk-writes the records to\n"+
			"Elasticsearch daily indices <index prefix>-<tenant>[.<dataset>]-YYYY.MM.DD; documents Elasticsearch\n"+
			"rejects go to <prefix>.dlq.<tenant>. Scale by adding replicas.",
		func(c *indexer.Config) telemetry.Config { return c.Telemetry },
		func(ctx context.Context, cfg indexer.Config, st stage) error {
			ix, err := indexer.New(cfg, indexer.Options{Logger: st.log, Registerer: st.reg, Ready: st.ready})
			if err != nil {
				return err
			}
			return ix.Run(ctx)
		})
}
