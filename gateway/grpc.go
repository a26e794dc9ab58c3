package gateway

import (
	"context"
	"net"
	"net/http"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	grpccreds "google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP exporters compress with gzip
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// grpcStreamsPerConn bounds the calls in progress on one gRPC connection;
// with SLUICE_GATEWAY_MAX_CONNECTIONS it bounds the messages gRPC reads
// before the gateway's own bounds see them.
const grpcStreamsPerConn = 16

// serveGRPC serves OTLP/gRPC's LogsService on ln, sending Serve's end to
// errs; the function returned stops it, gracefully within ctx.
func (g *Gateway) serveGRPC(ln net.Listener, errs chan<- error) func(context.Context) {
	opts := []grpc.ServerOption{
		// Bounds the message after decompression too (gzip bombs).
		grpc.MaxRecvMsgSize(int(g.cfg.MaxDecompressedBytes)),
		grpc.MaxConcurrentStreams(grpcStreamsPerConn),
		grpc.ConnectionTimeout(min(g.cfg.ReadTimeout, 10*time.Second)),
	}
	if g.tls != nil {
		opts = append(opts, grpc.Creds(grpccreds.NewTLS(g.tls)))
	}
	s := grpc.NewServer(opts...)
	collogs.RegisterLogsServiceServer(s, &grpcLogs{g: g})
	go func() { errs <- s.Serve(ln) }()
	return func(ctx context.Context) {
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.Stop()
		}
	}
}

// grpcLogs is the LogsService: Export does what POST /v1/logs does, with
// the credentials in the authorization metadata (Basic or Bearer, as the
// HTTP header) and the idempotency key in idempotency-key.
type grpcLogs struct {
	collogs.UnimplementedLogsServiceServer
	g *Gateway
}

func (s *grpcLogs) Export(ctx context.Context, req *collogs.ExportLogsServiceRequest) (*collogs.ExportLogsServiceResponse, error) {
	g := s.g
	received := g.now()
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(key string) string {
		if v := md.Get(key); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	creds, credErr := g.credentials(first("authorization"))
	c, f := g.begin(ctx, endpointOTLPGRPC, creds, credErr)
	defer c.end()
	if f != nil {
		return nil, grpcFailure(c, f)
	}
	idem := first("idempotency-key")
	if len(idem) > maxIdempotencyKey {
		return nil, grpcFailure(c, &failure{status: http.StatusBadRequest, reason: reasonBadRequest, msg: "the idempotency-key metadata is too long"})
	}
	// gRPC decoded the message already: its deterministic encoding stands
	// for the body, in the ids and the byte bounds.
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, grpcFailure(c, &failure{status: http.StatusBadRequest, reason: reasonBadRequest, msg: err.Error()})
	}
	if !g.lim.take(c.tenant, int64(len(body))*bodyCharge) {
		return nil, grpcFailure(c, c.backpressure())
	}
	c.held += int64(len(body)) * bodyCharge
	g.m.bytes.WithLabelValues(c.tenant.name).Add(float64(len(body)))
	out, f := g.ingestOTLP(ctx, c, req, c.idBase(idem, body), len(body), received)
	c.count(out)
	if f != nil {
		return nil, grpcFailure(c, f)
	}
	resp := &collogs.ExportLogsServiceResponse{}
	if len(out.rejected) > 0 {
		resp.PartialSuccess = &collogs.ExportLogsPartialSuccess{RejectedLogRecords: int64(len(out.rejected)), ErrorMessage: out.message()}
	}
	c.finish(http.StatusOK, nil)
	return resp, nil
}

// grpcFailure is f as a gRPC status: the code OTLP maps f's HTTP status
// to, with RetryInfo when f says when to retry (OTLP exporters retry
// RESOURCE_EXHAUSTED only with it).
func grpcFailure(c *call, f *failure) error {
	c.finish(f.status, f)
	st := status.New(grpcCode(f.status), f.msg)
	if f.retryAfter > 0 {
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(f.retryAfter)}); err == nil {
			st = d
		}
	}
	return st.Err()
}
