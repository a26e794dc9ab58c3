// Package kafka holds what every Sluice stage needs to talk to Kafka: client
// options built from environment settings (brokers, TLS, SASL), topic names,
// a kgo logger backed by slog, Prometheus client metrics, tenant id
// validation, and the bounded decompression (BoundedFetchOpts) of consumers
// of tenants' topics, which cuts oversize records (CutSize) rather than
// stop a partition. docs/architecture.md says which stage writes and reads
// each topic.
//
// Stages build their own clients:
//
//	opts, err := cfg.Kafka.Options()
//	if err != nil { ... }
//	opts = append(opts,
//		kgo.WithLogger(kafka.NewLogger(log)),
//		kgo.WithHooks(kafka.NewMetrics(reg)),
//		kgo.RequiredAcks(kgo.AllISRAcks()), // stage-specific options
//	)
//	cl, err := kafka.NewClient(opts...)
package kafka

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicelogs/sluice/internal/config"
)

// SASL mechanism names accepted in SLUICE_KAFKA_SASL_MECHANISM (compared
// case-insensitively).
const (
	SASLNone        = "none"
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Config is the Kafka connection of a stage, loaded with config.Load. Embed
// it without an env prefix= so that the variable names below (and those in
// Validate's messages) are the ones in effect.
//
// Credentials come from the environment or from files (Kubernetes secrets
// mounted as files), never from flags.
type Config struct {
	Brokers []string `env:"KAFKA_BROKERS, default=127.0.0.1:9092" help:"Seed brokers as host:port, comma-separated."`
	// ClientID has no default here: a stage sets its name (sluice-shipper,
	// ...) when it is empty, before calling Options.
	ClientID string `env:"KAFKA_CLIENT_ID" help:"Kafka client id, shown in broker logs and quotas. Empty: the stage's name, e.g. sluice-shipper."`

	TLSEnabled            bool   `env:"KAFKA_TLS_ENABLED" help:"Connect to brokers with TLS (1.2 or later)."`
	TLSCAFile             string `env:"KAFKA_TLS_CA_FILE" help:"PEM file of CA certificates to verify brokers with. Empty: the system roots."`
	TLSCertFile           string `env:"KAFKA_TLS_CERT_FILE" help:"PEM client certificate for mutual TLS; needs SLUICE_KAFKA_TLS_KEY_FILE."`
	TLSKeyFile            string `env:"KAFKA_TLS_KEY_FILE" help:"PEM private key of SLUICE_KAFKA_TLS_CERT_FILE."`
	TLSServerName         string `env:"KAFKA_TLS_SERVER_NAME" help:"Name to verify broker certificates against. Empty: the host of each broker address."`
	TLSInsecureSkipVerify bool   `env:"KAFKA_TLS_INSECURE_SKIP_VERIFY" help:"Do not verify broker certificates. For testing only."`

	SASLMechanism    string `env:"KAFKA_SASL_MECHANISM, default=none" help:"SASL mechanism: none, PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (any case). Use TLS with PLAIN outside a trusted network."`
	SASLUsername     string `env:"KAFKA_SASL_USERNAME" help:"SASL user name."`
	SASLPassword     string `env:"KAFKA_SASL_PASSWORD" secret:"true" help:"SASL password. Set this or SLUICE_KAFKA_SASL_PASSWORD_FILE, not both."`
	SASLPasswordFile string `env:"KAFKA_SASL_PASSWORD_FILE" help:"File holding the SASL password (one trailing newline is ignored), read at startup. Set this or SLUICE_KAFKA_SASL_PASSWORD, not both."`

	Compression string `env:"KAFKA_COMPRESSION, default=snappy" help:"Compression of produced record batches: snappy, lz4, zstd, gzip or none. snappy costs the least CPU (on the standard node workload a third less than zstd for the shipper), zstd stores and sends the fewest bytes (about a third fewer than snappy)."`

	TopicPrefix string `env:"TOPIC_PREFIX, default=logs" help:"First element of every Sluice topic name: <prefix>.raw.<tenant>, <prefix>.parsed.<tenant>, <prefix>.dlq.<tenant>, <prefix>.config.<tenant>, <prefix>.status[.<tenant>]."`
}

// Full variable names, used in problems and errors.
var (
	varBrokers          = config.Var("KAFKA_BROKERS")
	varTLSEnabled       = config.Var("KAFKA_TLS_ENABLED")
	varTLSCAFile        = config.Var("KAFKA_TLS_CA_FILE")
	varTLSCertFile      = config.Var("KAFKA_TLS_CERT_FILE")
	varTLSKeyFile       = config.Var("KAFKA_TLS_KEY_FILE")
	varTLSServerName    = config.Var("KAFKA_TLS_SERVER_NAME")
	varTLSInsecure      = config.Var("KAFKA_TLS_INSECURE_SKIP_VERIFY")
	varSASLMechanism    = config.Var("KAFKA_SASL_MECHANISM")
	varSASLUsername     = config.Var("KAFKA_SASL_USERNAME")
	varSASLPassword     = config.Var("KAFKA_SASL_PASSWORD")
	varSASLPasswordFile = config.Var("KAFKA_SASL_PASSWORD_FILE")
	varTopicPrefix      = config.Var("TOPIC_PREFIX")
	varCompression      = config.Var("KAFKA_COMPRESSION")
)

// compressionCodec returns the producer codec named by c.Compression.
func (c Config) compressionCodec() (kgo.CompressionCodec, bool) {
	switch strings.ToLower(strings.TrimSpace(c.Compression)) {
	case "snappy", "": // empty: a Config built in code, the default
		return kgo.SnappyCompression(), true
	case "lz4":
		return kgo.Lz4Compression(), true
	case "zstd":
		// The fastest level: on a node CPU is worth more than the last
		// percent of ratio.
		return kgo.ZstdCompression().WithLevel(int(zstd.SpeedFastest)), true
	case "gzip":
		return kgo.GzipCompression(), true
	case "none":
		return kgo.NoCompression(), true
	}
	return kgo.CompressionCodec{}, false
}

// mechanism returns the canonical SASL mechanism name, or "" if unknown.
func (c Config) mechanism() string {
	m := strings.TrimSpace(c.SASLMechanism)
	if m == "" {
		return SASLNone
	}
	for _, known := range []string{SASLNone, SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		if strings.EqualFold(m, known) {
			return known
		}
	}
	return ""
}

// Validate reports every problem of c, joined, each naming its variable. It
// does no I/O: files are read by Options, which a validate command should
// call as well.
//
// TLS file settings without SLUICE_KAFKA_TLS_ENABLED=true are a problem
// rather than ignored, so that a forgotten switch never means plaintext.
// Setting both SLUICE_KAFKA_SASL_PASSWORD and SLUICE_KAFKA_SASL_PASSWORD_FILE
// is a problem rather than one silently winning.
func (c Config) Validate() error {
	var p config.Problems

	if len(c.Brokers) == 0 {
		p.Add(varBrokers, "must not be empty")
	}
	for _, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			p.Add(varBrokers, "%q is not host:port", b)
		}
	}

	if !c.TLSEnabled {
		for _, set := range []struct {
			name string
			set  bool
		}{
			{varTLSCAFile, c.TLSCAFile != ""},
			{varTLSCertFile, c.TLSCertFile != ""},
			{varTLSKeyFile, c.TLSKeyFile != ""},
			{varTLSServerName, c.TLSServerName != ""},
			{varTLSInsecure, c.TLSInsecureSkipVerify},
		} {
			if set.set {
				p.Add(set.name, "is set but %s is not true", varTLSEnabled)
			}
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		if c.TLSCertFile == "" {
			p.Add(varTLSCertFile, "must be set with %s", varTLSKeyFile)
		} else {
			p.Add(varTLSKeyFile, "must be set with %s", varTLSCertFile)
		}
	}

	switch c.mechanism() {
	case "":
		p.Add(varSASLMechanism, "%q is not one of none, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.SASLMechanism)
	case SASLNone:
		if c.SASLUsername != "" || c.SASLPassword != "" || c.SASLPasswordFile != "" {
			p.Add(varSASLMechanism, "is none but SASL credentials are set")
		}
	default:
		if c.SASLUsername == "" {
			p.Add(varSASLUsername, "must be set with %s=%s", varSASLMechanism, c.mechanism())
		}
		switch {
		case c.SASLPassword != "" && c.SASLPasswordFile != "":
			p.Add(varSASLPassword, "must not be set together with %s", varSASLPasswordFile)
		case c.SASLPassword == "" && c.SASLPasswordFile == "":
			p.Add(varSASLPassword, "or %s must be set with %s=%s", varSASLPasswordFile, varSASLMechanism, c.mechanism())
		}
	}

	p.AddErr(varTopicPrefix, ValidatePrefix(c.TopicPrefix))
	if _, ok := c.compressionCodec(); !ok {
		p.Add(varCompression, "%q is not one of snappy, lz4, zstd, gzip, none", c.Compression)
	}
	return p.Err()
}

// LogValue implements slog.LogValuer: every setting by variable name, with
// the password redacted.
func (c Config) LogValue() slog.Value { return config.LogValue(c) }

// String formats c as NAME=value pairs with the password redacted, so that
// printing a Config with the fmt verbs never shows a secret.
func (c Config) String() string {
	var b strings.Builder
	for i, a := range c.LogValue().Group() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%q", a.Key, a.Value.String())
	}
	return b.String()
}

// Topics returns the topic names under c.TopicPrefix.
func (c Config) Topics() Topics { return Topics{Prefix: c.TopicPrefix} }

// Options validates c and returns the kgo options for it: seed brokers,
// client id (if set), batch compression, TLS dialing and SASL. It reads the TLS and password
// files each time it is called; a rotated file takes effect for clients
// created afterwards. Errors name the variable at fault and never contain a
// secret.
//
// Callers append their own options (logger, hooks, producer or consumer
// settings).
func (c Config) Options() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	codec, _ := c.compressionCodec()
	opts = append(opts, kgo.ProducerBatchCompression(codec, kgo.NoCompression()))
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}
	if c.TLSEnabled {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.mechanism(); m != SASLNone {
		mech, err := c.sasl(m)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

func (c Config) tlsConfig() (*tls.Config, error) {
	return config.TLS{
		CAFile:   c.TLSCAFile,
		CAVar:    varTLSCAFile,
		CertFile: c.TLSCertFile,
		KeyFile:  c.TLSKeyFile,
		CertVar:  varTLSCertFile,
		// Empty: kgo verifies each broker against its own host.
		ServerName:         c.TLSServerName,
		InsecureSkipVerify: c.TLSInsecureSkipVerify,
	}.Config()
}

func (c Config) sasl(mechanism string) (sasl.Mechanism, error) {
	pass := c.SASLPassword
	if c.SASLPasswordFile != "" {
		var err error
		if pass, err = config.ReadSecret(varSASLPasswordFile, c.SASLPasswordFile); err != nil {
			return nil, err
		}
	}
	user := c.SASLUsername
	switch mechanism {
	case SASLPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case SASLScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case SASLScramSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	// Unreachable after Validate.
	return nil, &config.Problem{Var: varSASLMechanism, Err: fmt.Errorf("unsupported mechanism %q", c.SASLMechanism)}
}

// ForUser returns c authenticating as user with password in place of its
// own SASL credentials (and password file): the clients of a process that
// acts for many Kafka users, such as the gateway, which produces as the
// tenant whose credentials a request carries. Everything else (brokers,
// TLS, mechanism, compression, topic prefix) stays c's.
func (c Config) ForUser(user, password string) Config {
	c.SASLUsername, c.SASLPassword, c.SASLPasswordFile = user, password, ""
	return c
}

// SASLEnabled reports whether c authenticates with SASL (a mechanism other
// than none).
func (c Config) SASLEnabled() bool {
	m := c.mechanism()
	return m != "" && m != SASLNone
}

// Membership returns the consumer group options for a member named id: with
// an explicit id (a StatefulSet's pod name), static membership, so that a
// member restarted under its id takes its partitions back at once, without
// a rebalance and without waiting for the session timeout of the member it
// replaces; with none, dynamic membership (Deployment pods get new names
// every time). A static member does not leave the group when it stops.
func Membership(id string) []kgo.Opt {
	if id == "" {
		return nil
	}
	return []kgo.Opt{kgo.InstanceID(id)}
}
