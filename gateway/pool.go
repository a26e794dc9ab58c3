package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelogs/sluice/internal/kafka"
)

// Errors of acquiring a client.
var (
	// errUnauthorized: Kafka refused the credentials, or they name no
	// tenant. Every such request is answered alike.
	errUnauthorized = errors.New("invalid credentials")
	// errTooManyClients: every client slot holds credentials in use.
	errTooManyClients = errors.New("too many tenants' clients in use")
)

// kafkaUnavailable wraps an error of reaching Kafka to check credentials.
type kafkaUnavailable struct{ err error }

func (e *kafkaUnavailable) Error() string { return "Kafka did not answer: " + e.err.Error() }
func (e *kafkaUnavailable) Unwrap() error { return e.err }

// maxVerifying bounds the SASL handshakes made at once to check new
// credentials, so that a burst of unknown credentials costs Kafka (and the
// gateway: SCRAM's key derivation is deliberately slow) a bounded effort.
const maxVerifying = 8

// maxDenied bounds the remembered refused credentials.
const maxDenied = 1 << 16

// pool holds one Kafka client per credentials in use, authenticated as the
// tenant's user, so that Kafka's ACLs and quotas apply to what the gateway
// produces for the tenant exactly as to the tenant's own producers.
//
// Credentials are known by the user name and an HMAC of the password
// under a key made at start (never the password itself, which only the
// client's SASL mechanism holds). A client is made and checked by a
// metadata request for the tenant's raw topic (the client's SASL
// handshake) the first time its credentials come, then used for
// SLUICE_GATEWAY_AUTH_TTL; after that the next request makes a new one,
// and the old one is closed when its requests are done. Credentials Kafka
// refused are refused for SLUICE_GATEWAY_AUTH_FAILURE_TTL without asking
// it again. At most SLUICE_GATEWAY_MAX_CLIENTS clients exist; unused ones
// are closed after SLUICE_GATEWAY_CLIENT_IDLE_TIMEOUT.
type pool struct {
	cfg    *Config
	log    *slog.Logger
	m      *metrics
	lim    *limits
	macKey []byte
	now    func() time.Time
	sem    chan struct{}

	mu        sync.Mutex
	clients   map[string]*client
	verifying map[string]chan struct{}
	denied    map[string]time.Time
	closed    bool
}

// client is a Kafka client authenticated as one tenant's user.
type client struct {
	key      string
	tenant   *tenantState
	cl       *kgo.Client
	verified time.Time
	// Guarded by pool.mu.
	lastUsed time.Time
	refs     int
	retired  bool
}

func newPool(cfg *Config, log *slog.Logger, m *metrics, lim *limits) *pool {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &pool{
		cfg: cfg, log: log, m: m, lim: lim, macKey: key, now: time.Now,
		sem:       make(chan struct{}, maxVerifying),
		clients:   make(map[string]*client),
		verifying: make(map[string]chan struct{}),
		denied:    make(map[string]time.Time),
	}
}

// credKey is how credentials are known: the user and the HMAC of the
// password.
func (p *pool) credKey(user, password string) string {
	mac := hmac.New(sha256.New, p.macKey)
	mac.Write([]byte(password))
	return user + "\x00" + hex.EncodeToString(mac.Sum(nil))
}

// acquire returns a client authenticated as user with password, made and
// checked if need be; release it when done. Errors: errUnauthorized,
// errTooManyClients, *kafkaUnavailable, or ctx's.
func (p *pool) acquire(ctx context.Context, user, password string) (*client, error) {
	if kafka.ValidateTenant(user) != nil {
		p.m.auth.WithLabelValues("denied").Inc()
		return nil, errUnauthorized
	}
	if p.cfg.InsecureTrustUsername {
		password = ""
	}
	key := p.credKey(user, password)
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, &kafkaUnavailable{err: errors.New("the gateway is shutting down")}
		}
		now := p.now()
		if c := p.clients[key]; c != nil {
			if now.Sub(c.verified) < p.cfg.AuthTTL {
				c.refs++
				c.lastUsed = now
				p.mu.Unlock()
				p.m.auth.WithLabelValues("cached").Inc()
				return c, nil
			}
			p.retireLocked(c)
		}
		if until, ok := p.denied[key]; ok && now.Before(until) {
			p.mu.Unlock()
			p.m.auth.WithLabelValues("denied").Inc()
			return nil, errUnauthorized
		}
		if wait, ok := p.verifying[key]; ok {
			// Another request checks these credentials: wait for it.
			p.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if len(p.clients)+len(p.verifying) >= p.cfg.MaxClients && !p.evictLocked() {
			p.mu.Unlock()
			return nil, errTooManyClients
		}
		done := make(chan struct{})
		p.verifying[key] = done
		p.mu.Unlock()

		c, err := p.connect(ctx, key, user, password)

		p.mu.Lock()
		delete(p.verifying, key)
		close(done)
		switch {
		case err == nil && p.closed:
			c.cl.Close()
			err = &kafkaUnavailable{err: errors.New("the gateway is shutting down")}
		case err == nil:
			c.refs, c.lastUsed = 1, p.now()
			p.clients[key] = c
			p.m.clients.Set(float64(len(p.clients)))
		case errors.Is(err, errUnauthorized):
			if len(p.denied) >= maxDenied {
				p.purgeDeniedLocked(p.now())
			}
			p.denied[key] = p.now().Add(p.cfg.AuthFailureTTL)
		}
		p.mu.Unlock()
		return c, err
	}
}

// release ends a request's use of c.
func (p *pool) release(c *client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.refs--
	c.lastUsed = p.now()
	if c.retired && c.refs == 0 {
		go c.cl.Close()
	}
}

// forget retires c at once: Kafka refused its credentials after all (the
// password changed, the user was deleted).
func (p *pool) forget(c *client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clients[c.key] == c {
		p.retireLocked(c)
	}
}

// retireLocked takes c out of the pool; it is closed when no request uses
// it any more.
func (p *pool) retireLocked(c *client) {
	delete(p.clients, c.key)
	p.m.clients.Set(float64(len(p.clients)))
	c.retired = true
	if c.refs == 0 {
		go c.cl.Close()
	}
}

// evictLocked retires the least recently used client no request uses, if
// there is one.
func (p *pool) evictLocked() bool {
	var lru *client
	for _, c := range p.clients {
		if c.refs == 0 && (lru == nil || c.lastUsed.Before(lru.lastUsed)) {
			lru = c
		}
	}
	if lru == nil {
		return false
	}
	p.retireLocked(lru)
	return true
}

func (p *pool) purgeDeniedLocked(now time.Time) {
	for k, until := range p.denied {
		if !now.Before(until) {
			delete(p.denied, k)
		}
	}
	if len(p.denied) >= maxDenied {
		clear(p.denied)
	}
}

// sweep closes the clients unused for SLUICE_GATEWAY_CLIENT_IDLE_TIMEOUT,
// and those past SLUICE_GATEWAY_AUTH_TTL that no request uses, and forgets
// expired refusals.
func (p *pool) sweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for _, c := range p.clients {
		if c.refs == 0 && (now.Sub(c.lastUsed) >= p.cfg.ClientIdle || now.Sub(c.verified) >= p.cfg.AuthTTL) {
			p.retireLocked(c)
		}
	}
	p.purgeDeniedLocked(now)
}

// close closes every client; requests still using one fail.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	cs := make([]*client, 0, len(p.clients))
	for _, c := range p.clients {
		cs = append(cs, c)
		delete(p.clients, c.key)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.cl.Close()
	}
}

// connect makes a client authenticated as user and checks the credentials
// with a metadata request for the tenant's raw topic, which makes the
// client's SASL handshake.
func (p *pool) connect(ctx context.Context, key, user, password string) (*client, error) {
	select {
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	kc := p.cfg.Kafka
	if !p.cfg.InsecureTrustUsername {
		kc = kc.ForUser(user, password)
	}
	opts, err := kc.Options()
	if err != nil {
		return nil, &kafkaUnavailable{err: err}
	}
	// The tenant's state is made once Kafka accepted the credentials, so
	// that made-up user names leave nothing behind; the throttle hook
	// learns it then.
	throttle := &throttleHook{now: p.now}
	if p.cfg.Kafka.ClientID == "" {
		opts = append(opts, kgo.ClientID("sluice-gateway"))
	}
	opts = append(opts,
		kgo.WithLogger(kafka.NewLogger(p.log.With("tenant", user))),
		kgo.WithHooks(throttle),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent, and delivery depends on it
		kgo.ProducerLinger(p.cfg.Linger),
		// A request waits for its records' acknowledgements; past the
		// timeout they fail and the request is answered 503.
		kgo.RecordDeliveryTimeout(p.cfg.AckTimeout),
		// The gateway's byte bounds decide what is buffered, never kgo's.
		kgo.MaxBufferedRecords(1<<22),
		// A tenant without a raw topic is told so at once.
		kgo.UnknownTopicRetries(2),
		kgo.DialTimeout(min(p.cfg.AckTimeout, 10*time.Second)),
	)
	closes := &handshakeCloses{refused: make(chan struct{})}
	opts = append(opts, kgo.WithHooks(closes))
	cl, err := kafka.NewClient(opts...)
	if err != nil {
		return nil, &kafkaUnavailable{err: err}
	}
	vctx, cancel := context.WithTimeout(ctx, min(p.cfg.AckTimeout, 10*time.Second))
	defer cancel()
	raw := p.cfg.Kafka.Topics().Raw(user)
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = &raw
	req.Topics = append(req.Topics, rt)
	done := make(chan error, 1)
	go func() {
		_, err := req.RequestWith(vctx, cl)
		done <- err
	}()
	select {
	case err = <-done:
	case <-closes.refused:
		err = kerr.SaslAuthenticationFailed
		cancel()
		<-done
	}
	if err != nil {
		cl.Close()
		if errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) {
			p.m.auth.WithLabelValues("denied").Inc()
			return nil, errUnauthorized
		}
		p.m.auth.WithLabelValues("error").Inc()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &kafkaUnavailable{err: err}
	}
	p.m.auth.WithLabelValues("verified").Inc()
	t := p.lim.tenant(user)
	throttle.t.Store(t)
	return &client{key: key, tenant: t, cl: cl, verified: p.now()}, nil
}

// throttleHook records Kafka's quota throttling of a tenant's user, so
// that the tenant's next requests are answered 429 with Retry-After until
// it ends, rather than waiting on Kafka.
type throttleHook struct {
	t   atomic.Pointer[tenantState]
	now func() time.Time
}

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if t := h.t.Load(); t != nil && d > 0 {
		t.throttle(h.now(), d)
	}
}

var _ kgo.HookBrokerThrottle = (*throttleHook)(nil)

// handshakeCloses is a kgo hook that tells credentials refused by a broker
// that closes the connection rather than answering the SASL exchange with
// an error (some do, and so does kfake): after closedLimit connections in
// a row closed during their handshake, refused is closed.
type handshakeCloses struct {
	mu      sync.Mutex
	run     int
	refused chan struct{}
}

const closedLimit = 2

func (h *handshakeCloses) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		h.run = 0
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		h.run++
		if h.run == closedLimit {
			close(h.refused)
		}
	}
}

var _ kgo.HookBrokerConnect = (*handshakeCloses)(nil)
