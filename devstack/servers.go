package devstack

// The embedded servers: Kafka (kfake) and the Elasticsearch-compatible
// store. This file is the only one that names the store's package.

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	esstore "github.com/sluicelogs/sluice/internal/devstack"
	"github.com/sluicelogs/sluice/internal/escompat"
)

// StoreConfig is the settings of the embedded store (SLUICE_DEV_ES_*):
// faults and latency, for watching the indexer retry without a real
// cluster misbehaving.
type StoreConfig = esstore.Config

// Kafka is the embedded Kafka: one kfake broker keeping its log in a
// directory, so that it can be stopped (a Kafka outage, for the load test)
// and started again on the same address and log, where it left off.
type Kafka struct {
	dir string

	mu     sync.Mutex
	addr   string // host:port, the port fixed at the first start
	c      *kfake.Cluster
	closed bool
}

// StartKafka starts an embedded Kafka listening on addr (host:port; port 0
// picks one) with its log under dir. Topics are made explicitly, with 3
// partitions unless told otherwise.
func StartKafka(addr, dir string) (*Kafka, error) {
	c, err := esstore.StartKafka(addr, dir)
	if err != nil {
		return nil, err
	}
	return &Kafka{dir: dir, addr: c.ListenAddrs()[0], c: c}, nil
}

// Brokers is where the broker listens: the same after a restart.
func (k *Kafka) Brokers() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return []string{k.addr}
}

// Stop stops the broker; Restart starts it again. Clients see an outage.
func (k *Kafka) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

// Restart starts a stopped broker again on its address and log; a running
// one is left alone. The port may linger for a moment after Stop: it
// retries for 5 seconds.
func (k *Kafka) Restart() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c != nil || k.closed {
		return nil
	}
	var err error
	for range 50 {
		if k.c, err = esstore.StartKafka(k.addr, k.dir); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("restart Kafka: %w", err)
}

// Close stops the broker for good.
func (k *Kafka) Close() {
	k.Stop()
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
}

// Faults are errors and delays the embedded store answers with.
type Faults struct {
	// Status of the requests answered with a fault: 429 or 503 (0: 503).
	Status int
	// Requests is the fraction (0 to 1) of requests, on every endpoint but
	// GET /, answered with Status; Items the fraction of bulk items
	// answered with a per-item 429.
	Requests, Items float64
	// Latency is added before answering each request.
	Latency time.Duration
}

func (f Faults) store() escompat.Faults {
	return escompat.Faults{RequestStatus: f.Status, RequestFraction: f.Requests, ItemFraction: f.Items, Latency: f.Latency}.Normalized()
}

// storeFaults are the faults c asks for.
func storeFaults(c StoreConfig) Faults {
	return Faults{Status: c.FaultStatus, Requests: c.FaultRequests, Items: c.FaultItems, Latency: c.Latency}
}

// Store is the embedded Elasticsearch-compatible store, served over HTTP.
type Store struct {
	st  *esstore.Store
	srv *http.Server
	url string
}

// StartStore opens the store kept in dir and serves its Elasticsearch API
// on addr (host:port; port 0 picks one). log may be nil.
func StartStore(addr, dir string, log *slog.Logger, faults Faults) (*Store, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &addrError{addr: addr, err: err}
	}
	opts := []esstore.Option{esstore.WithFaults(faults.store())}
	if log != nil {
		opts = append(opts, esstore.WithLogger(log))
	}
	st, err := esstore.Open(dir, opts...)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded Elasticsearch-compatible store: %w", err)
	}
	return &Store{st: st, srv: st.Serve(ln), url: "http://" + ln.Addr().String()}, nil
}

// addrError is an address the store cannot listen on.
type addrError struct {
	addr string
	err  error
}

func (e *addrError) Error() string {
	return fmt.Sprintf("embedded Elasticsearch-compatible store: %s is not free: %v", e.addr, e.err)
}

func (e *addrError) Unwrap() error { return e.err }

// URL is the store's address, http://host:port.
func (s *Store) URL() string { return s.url }

// SetFaults changes the faults the store answers with.
func (s *Store) SetFaults(f Faults) { s.st.SetFaults(f.store()) }

// Close stops serving and closes the store.
func (s *Store) Close() error {
	_ = s.srv.Close()
	return s.st.Close()
}
