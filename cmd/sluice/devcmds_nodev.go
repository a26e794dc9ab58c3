//go:build nodev

package main

import (
	"context"
	"errors"
	"io"
)

// devCommands, in a build without the development stack (-tags nodev, the
// production image), are stand-ins that say where to find them.
func devCommands() []command {
	missing := func(context.Context, []string, io.Writer, io.Writer) error {
		return errors.New("this build has no development stack (built with -tags nodev); use a build of make build")
	}
	return []command{
		{"dev", "not in this build (production image): use make build", missing},
		{"loadtest", "not in this build (production image): use make build", missing},
	}
}
