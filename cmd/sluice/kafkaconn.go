package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
)

// defaultTimeout bounds what a command waits for Kafka or Elasticsearch
// unless --timeout says otherwise: long enough for a cluster across a
// network, short enough that a wrong address or password is reported
// while the user still waits for an answer.
const defaultTimeout = 10 * time.Second

// timeoutFlag adds --timeout to a command that talks to server (Kafka or
// Elasticsearch); what says what it bounds.
func timeoutFlag(fs *flag.FlagSet, what string) *time.Duration {
	return fs.Duration("timeout", defaultTimeout, what)
}

// kafkaTimeoutFlag adds the --timeout of the commands that connect to Kafka
// and are done when their requests are.
func kafkaTimeoutFlag(fs *flag.FlagSet) *time.Duration {
	return timeoutFlag(fs, "give up when Kafka has not answered within this long")
}

// checkTimeout refuses a timeout that would never let a command through.
func checkTimeout(d time.Duration) error {
	if d <= 0 {
		return cli.Usagef("--timeout must be positive, got %s", d)
	}
	return nil
}

// kafkaSession is a command's connection to Kafka: the client, whose
// connection and credentials were checked, and the settings it came from.
type kafkaSession struct {
	cl     *kgo.Client
	adm    *kadm.Client
	topics kafka.Topics
	cfg    kafka.Config
	dials  *dialErrors

	parent  context.Context // the command's: ended only by an interrupt
	timeout time.Duration
	follow  bool
}

// kafkaCall says how a command connects.
type kafkaCall struct {
	clientID string
	timeout  time.Duration
	extra    []kgo.Opt
	// follow: the command runs past the timeout (tail follows, produce
	// reads stdin), so only connecting and the checks are bounded by it.
	// Otherwise the whole command is.
	follow bool
}

// connectKafka loads the Kafka settings (SLUICE_KAFKA_*,
// SLUICE_TOPIC_PREFIX), connects as call.clientID (unless the settings name
// one) with the extra client options, checks within the timeout that Kafka
// answers and takes the credentials, and calls fn. Errors say what to fix:
// the address, the credentials, or nothing but waiting longer.
func connectKafka(ctx context.Context, call kafkaCall, fn func(ctx context.Context, k *kafkaSession) error) error {
	if err := checkTimeout(call.timeout); err != nil {
		return err
	}
	var cfg pipelineConfig
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	if cfg.Kafka.ClientID == "" {
		cfg.Kafka.ClientID = call.clientID
	}
	opts, err := cfg.Kafka.Options()
	if err != nil {
		return fmt.Errorf("kafka settings:\n%w", err)
	}
	dials := newDialErrors()
	// A dial of its own that is not bounded by the timeout would make the
	// first request outlast it (kgo's default is 10 s).
	opts = append(opts, kgo.DialTimeout(min(call.timeout, 10*time.Second)), kgo.WithHooks(dials))
	cl, err := kafka.NewClient(append(opts, call.extra...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	k := &kafkaSession{cl: cl, adm: kadm.NewClient(cl), topics: cfg.Kafka.Topics(), cfg: cfg.Kafka, dials: dials,
		parent: ctx, timeout: call.timeout, follow: call.follow}

	bounded, cancel := context.WithTimeout(ctx, call.timeout)
	defer cancel()
	if err := k.wait(bounded, func(ctx context.Context) error {
		_, err := k.adm.BrokerMetadata(ctx)
		return err
	}); err != nil {
		return err
	}
	if call.follow {
		return fn(ctx, k)
	}
	err = fn(bounded, k)
	if err != nil && bounded.Err() != nil && ctx.Err() == nil && !strings.Contains(err.Error(), "--timeout") {
		return fmt.Errorf("%w (no answer from Kafka within %s: --timeout)", err, call.timeout)
	}
	return err
}

// bound returns the context a check runs under: ctx itself in a command
// bounded as a whole (it is), a timeout of its own in one that follows.
func (k *kafkaSession) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if k.follow {
		return context.WithTimeout(ctx, k.timeout)
	}
	return ctx, func() {}
}

// bounded runs fn under a timeout of its own and says so when that expired:
// the exchanges of a command that waits for something else in between (a
// user's answer).
func (k *kafkaSession) bounded(ctx context.Context, fn func(ctx context.Context) error) error {
	bctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	err := fn(bctx)
	if err != nil && bctx.Err() != nil && k.parent.Err() == nil {
		return fmt.Errorf("%w (no answer from Kafka within %s: --timeout)", err, k.timeout)
	}
	return err
}

// wait runs req under ctx, which the timeout bounds, and returns its error
// explained. A request kgo keeps waiting on past ctx's deadline (a
// connection that never answers) is given up on at the deadline.
func (k *kafkaSession) wait(ctx context.Context, req func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- req(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	case <-k.dials.closed:
		err = k.dials.last()
	}
	if err == nil {
		return nil
	}
	if k.parent.Err() != nil {
		return k.parent.Err() // interrupted: nothing to explain
	}
	return k.explain(err, k.timeout)
}

// explain turns an error of connecting to Kafka into what to fix.
func (k *kafkaSession) explain(err error, timeout time.Duration) error {
	brokers := strings.Join(k.cfg.Brokers, ",")
	last := k.dials.last()
	if errors.Is(err, context.DeadlineExceeded) && last != nil {
		err = last // what went wrong is the connection, not the wait
	}
	user := k.cfg.SASLUsername
	sasl := user != "" && !strings.EqualFold(k.cfg.SASLMechanism, kafka.SASLNone)
	var opErr *net.OpError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("Kafka at %s did not answer within %s (--timeout); check %s, and that the brokers are up",
			brokers, timeout, config.Var("KAFKA_BROKERS"))
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("Kafka at %s refused the credentials of user %q (%v): check %s and %s",
			brokers, user, err, config.Var("KAFKA_SASL_USERNAME"), config.Var("KAFKA_SASL_PASSWORD"))
	case errors.Is(err, kerr.UnsupportedSaslMechanism) || errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("Kafka at %s does not take SASL mechanism %s (%v): check %s",
			brokers, k.cfg.SASLMechanism, err, config.Var("KAFKA_SASL_MECHANISM"))
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return fmt.Errorf("Kafka at %s: TLS: %v: check %s and %s", brokers, err, config.Var("KAFKA_TLS_CA_FILE"), config.Var("KAFKA_TLS_SERVER_NAME"))
	case errors.As(err, &recordErr):
		return fmt.Errorf("Kafka at %s does not speak TLS (%v): unset %s, or use its TLS listener", brokers, err, config.Var("KAFKA_TLS_ENABLED"))
	case isClosedDuringHandshake(err) && sasl:
		// Kafka answers a failed authentication with an error, but some
		// brokers (and proxies) just close the connection.
		return fmt.Errorf("Kafka at %s closed the connection while authenticating user %q with %s: the password is likely wrong (check %s and %s)",
			brokers, user, k.cfg.SASLMechanism, config.Var("KAFKA_SASL_USERNAME"), config.Var("KAFKA_SASL_PASSWORD"))
	case isClosedDuringHandshake(err):
		return fmt.Errorf("Kafka at %s closed the connection (%v): it may want TLS (%s=true) or SASL credentials (%s, _USERNAME, _PASSWORD)",
			brokers, err, config.Var("KAFKA_TLS_ENABLED"), config.Var("KAFKA_SASL_MECHANISM"))
	case errors.As(err, &opErr) && opErr.Op == "dial", errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach Kafka at %s: %v (check %s; 'sluice dev' serves one on 127.0.0.1:9092)",
			brokers, err, config.Var("KAFKA_BROKERS"))
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return fmt.Errorf("Kafka at %s: %w: user %q may not do this (administrator credentials needed)", brokers, err, user)
	}
	return fmt.Errorf("Kafka at %s: %w", brokers, err)
}

// isClosedDuringHandshake reports an error of a connection the broker
// closed before answering.
func isClosedDuringHandshake(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// dialErrors is a kgo hook keeping the last failed connection, whose error
// says more than a deadline. Connections that the broker closes during
// the handshake, again and again, are a refusal (of credentials, most
// often) that kgo would retry until the timeout: after closedLimit in a
// row, closed is closed, and the command gives up at once.
type dialErrors struct {
	mu        sync.Mutex
	err       error
	closedRun int
	closed    chan struct{}
}

const closedLimit = 3

func newDialErrors() *dialErrors { return &dialErrors{closed: make(chan struct{})} }

func (d *dialErrors) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
	switch {
	case err == nil:
		d.closedRun = 0
	case isClosedDuringHandshake(err):
		d.closedRun++
		if d.closedRun == closedLimit {
			close(d.closed)
		}
	}
}

func (d *dialErrors) last() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// tenantTopic checks that topic, one of tenant's, exists and that these
// credentials may use it; else it says why not and how to fix that: make
// the tenant, use its credentials, or mind a typo.
func (k *kafkaSession) tenantTopic(ctx context.Context, tenant, topic string) error {
	cctx, cancel := k.bound(ctx)
	defer cancel()
	var details kadm.TopicDetails
	if err := k.wait(cctx, func(ctx context.Context) error {
		var err error
		details, err = k.adm.ListTopics(ctx, topic)
		return err
	}); err != nil {
		return err
	}
	d, listed := details[topic]
	switch {
	case listed && d.Err == nil:
		return nil
	case listed && errors.Is(d.Err, kerr.TopicAuthorizationFailed):
		return fmt.Errorf("%w: Kafka user %q may not use %s: use tenant %s's own credentials (sluice tenant create prints them)",
			d.Err, k.cfg.SASLUsername, topic, tenant)
	case listed && !errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("topic %s: %w", topic, d.Err)
	}
	// The topic is missing: is it the tenant, or only this topic?
	all, err := k.adm.ListTopics(cctx)
	if err != nil {
		return fmt.Errorf("tenant %s has no topic %s (%v)", tenant, topic, err)
	}
	raw := k.topics.Raw(tenant)
	var tenants, datasets []string
	for _, name := range all.Names() {
		tn, kind, dataset, ok := k.topics.TenantOf(name)
		switch {
		case !ok:
		case kind == kafka.KindRaw:
			tenants = append(tenants, tn)
		case tn == tenant && dataset != "":
			datasets = append(datasets, dataset)
		}
	}
	if _, tenantOK := all[raw]; !tenantOK {
		msg := fmt.Sprintf("tenant %s has no topic %s", tenant, raw)
		if s := cli.Suggest(tenant, tenants); s != "" {
			msg += fmt.Sprintf(" (did you mean tenant %s?)", s)
		}
		return fmt.Errorf("%s; make it with: sluice tenant create %s", msg, tenant)
	}
	if _, _, dataset, _ := k.topics.TenantOf(topic); dataset != "" {
		msg := fmt.Sprintf("tenant %s has no dataset topic %s", tenant, topic)
		if s := cli.Suggest(dataset, datasets); s != "" {
			msg += fmt.Sprintf(" (did you mean --dataset %s?)", s)
		}
		slices.Sort(datasets)
		if len(datasets) > 0 {
			msg += "; its datasets: " + strings.Join(datasets, ", ")
		} else {
			msg += "; it has no datasets"
		}
		return fmt.Errorf("%s; a pipeline that routes to dataset %s makes it when applied, or make it with: sluice tenant create --datasets %s %s",
			msg, dataset, dataset, tenant)
	}
	return fmt.Errorf("tenant %s has no topic %s; make it with: sluice tenant create %s", tenant, topic, tenant)
}
