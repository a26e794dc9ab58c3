package controller

import (
	"log/slog"

	"github.com/go-logr/logr"
)

// logrFrom gives controller-runtime, which logs through logr, the
// process's slog logger.
func logrFrom(log *slog.Logger) logr.Logger { return logr.FromSlogHandler(log.Handler()) }
