// Command otlplogs sends its arguments as log records with the
// OpenTelemetry Go SDK, through its OTLP/HTTP log exporter, configured the
// way every OpenTelemetry SDK is: by the standard environment variables.
// It is the README's example of an application sending its logs to
// Sluice's ingest gateway; it uses nothing of Sluice.
//
//	OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://localhost:4318/v1/logs \
//	OTEL_EXPORTER_OTLP_LOGS_HEADERS="Authorization=Basic%20$(printf shop: | base64)" \
//	OTEL_SERVICE_NAME=checkout \
//	go run ./docs/examples/otlplogs 'hello from the OpenTelemetry SDK'
//
// OTEL_EXPORTER_OTLP_LOGS_HEADERS is URL-encoded: %20 is the space after
// Basic. OTEL_RESOURCE_ATTRIBUTES adds resource attributes, e.g.
// k8s.namespace.name=checkout, which the gateway maps to the record's
// kubernetes fields.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "otlplogs:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, messages []string) error {
	if len(messages) == 0 {
		return errors.New("usage: otlplogs MESSAGE...")
	}
	// The SDK reports a failed export to the global error handler.
	var exportErr error
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { exportErr = errors.Join(exportErr, err) }))

	exp, err := otlploghttp.New(ctx) // OTEL_EXPORTER_OTLP_LOGS_* and OTEL_EXPORTER_OTLP_*
	if err != nil {
		return err
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK()) // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
	if err != nil {
		return err
	}
	// The simple processor exports each record as it is emitted: right
	// for a command. A service uses sdklog.NewBatchProcessor.
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)))
	logger := lp.Logger("otlplogs")
	for _, msg := range messages {
		var r log.Record
		r.SetTimestamp(time.Now())
		r.SetSeverity(log.SeverityInfo)
		r.SetSeverityText("INFO")
		r.SetBody(attribute.StringValue(msg))
		logger.Emit(ctx, r)
	}
	if err := lp.Shutdown(ctx); err != nil {
		return err
	}
	if exportErr != nil {
		return exportErr
	}
	fmt.Printf("sent %d log record(s)\n", len(messages))
	return nil
}
