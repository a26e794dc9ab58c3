package kafka

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// NewLogger adapts log to kgo's Logger at kgo.LogLevelWarn: kgo's info level
// logs every metadata refresh and connection, far too much for a pipeline
// that runs for months. Use NewLoggerLevel for more.
func NewLogger(log *slog.Logger) kgo.Logger {
	return NewLoggerLevel(log, kgo.LogLevelWarn)
}

// NewLoggerLevel adapts log to kgo's Logger, passing kgo messages at level and
// above. kgo levels map to the slog levels of the same name; the handler of
// log still applies its own level. Safe for concurrent use.
func NewLoggerLevel(log *slog.Logger, level kgo.LogLevel) kgo.Logger {
	return &logger{log: log, level: level}
}

type logger struct {
	log   *slog.Logger
	level kgo.LogLevel
}

func (l *logger) Level() kgo.LogLevel { return l.level }

func (l *logger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var sl slog.Level
	switch level {
	case kgo.LogLevelError:
		sl = slog.LevelError
	case kgo.LogLevelWarn:
		sl = slog.LevelWarn
	case kgo.LogLevelInfo:
		sl = slog.LevelInfo
	case kgo.LogLevelDebug:
		sl = slog.LevelDebug
	default:
		return
	}
	if level > l.level {
		return
	}
	// kgo passes alternating string keys and values, which slog accepts as is.
	l.log.Log(context.Background(), sl, msg, keyvals...)
}
