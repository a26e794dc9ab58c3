//go:build nodev

package main

import "github.com/sluicelogs/sluice/internal/cli"

// devCommands, in a build without the development stack (-tags nodev, the
// production image), are stand-ins that say where to find them.
func devCommands() []*cli.Command {
	const missing = "this build has no development stack (built with -tags nodev); use a build of make build"
	return []*cli.Command{
		{Name: "dev", Summary: "not in this build (production image): use make build", Unavailable: "dev: " + missing,
			Description: "Not in this build: " + missing + ".", Examples: []string{"make run"}},
		{Name: "loadtest", Summary: "not in this build (production image): use make build", Unavailable: "loadtest: " + missing,
			Description: "Not in this build: " + missing + ".", Examples: []string{"make loadtest"}},
	}
}
