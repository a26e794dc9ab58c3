//go:build !nodev

package main

import "github.com/sluicelogs/sluice/internal/cli"

// devCommands are the commands that embed the development stack (Kafka,
// the Elasticsearch stand-in and its search engine, the load test and its
// charts): dev, then loadtest. A build with -tags nodev leaves them out, so
// that the production image (the shipper's DaemonSet included) does not
// carry their code: they add 13 to 20 MB to a busy shipper's resident
// memory, as pages of the binary the runtime touches.
func devCommands() []*cli.Command {
	return []*cli.Command{devCommand(), loadtestCommand()}
}
