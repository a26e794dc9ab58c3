package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafkatest"
)

const testTopic = "logs.raw.acme"

// loadEnv loads a Config the way a stage does, from SLUICE_ variables.
func loadEnv(t *testing.T, env map[string]string) Config {
	t.Helper()
	var c Config
	if err := config.LoadFrom(context.Background(), &c, envconfig.MapLookuper(env)); err != nil {
		t.Fatalf("load: %v", err)
	}
	return c
}

// roundTrip produces one record to testTopic and consumes it back with a
// client built from c.Options.
func roundTrip(t *testing.T, c Config) {
	t.Helper()
	opts, err := c.Options()
	if err != nil {
		t.Fatalf("Options(): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append(opts,
		kgo.WithLogger(NewLogger(slog.New(slog.NewTextHandler(t.Output(), nil)))),
		kgo.DefaultProduceTopic(testTopic),
		kgo.ConsumeTopics(testTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	defer cl.Close()

	if err := cl.ProduceSync(ctx, kgo.StringRecord("hello")).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("no record consumed: %v", err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Errorf("fetch %s/%d: %v", topic, p, err)
		})
		if recs := fs.Records(); len(recs) > 0 {
			if got := string(recs[0].Value); got != "hello" {
				t.Errorf("consumed %q, want hello", got)
			}
			return
		}
	}
}

func TestKfakeSASL(t *testing.T) {
	tests := []struct {
		mechanism string // as the operator writes it
		kfakeMech string
		fromFile  bool
	}{
		{mechanism: "SCRAM-SHA-512", kfakeMech: "SCRAM-SHA-512"},
		{mechanism: "scram-sha-256", kfakeMech: "SCRAM-SHA-256", fromFile: true},
		{mechanism: "PLAIN", kfakeMech: "PLAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.mechanism, func(t *testing.T) {
			const user, pass = "sluice-shipper", "correct horse"
			cluster := kafkatest.Cluster(t, kafkatest.Topics(1, testTopic), kafkatest.With(kfake.EnableSASL(), kfake.Superuser(tt.kfakeMech, user, pass)))
			env := map[string]string{
				"SLUICE_KAFKA_BROKERS":        strings.Join(cluster.ListenAddrs(), ","),
				"SLUICE_KAFKA_CLIENT_ID":      "sluice-test",
				"SLUICE_KAFKA_SASL_MECHANISM": tt.mechanism,
				"SLUICE_KAFKA_SASL_USERNAME":  user,
			}
			if tt.fromFile {
				f := filepath.Join(t.TempDir(), "password")
				if err := os.WriteFile(f, []byte(pass+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				env["SLUICE_KAFKA_SASL_PASSWORD_FILE"] = f
			} else {
				env["SLUICE_KAFKA_SASL_PASSWORD"] = pass
			}
			roundTrip(t, loadEnv(t, env))
		})
	}
}

func TestKfakeSASLWrongPassword(t *testing.T) {
	cluster := kafkatest.Cluster(t, kafkatest.Topics(1, testTopic), kafkatest.Superuser("u", "right"))
	c := loadEnv(t, map[string]string{
		"SLUICE_KAFKA_BROKERS":        strings.Join(cluster.ListenAddrs(), ","),
		"SLUICE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
		"SLUICE_KAFKA_SASL_USERNAME":  "u",
		"SLUICE_KAFKA_SASL_PASSWORD":  "wrong",
	})
	opts, err := c.Options()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Kafka answers SaslAuthenticationFailed; kfake closes the connection.
	if err := cl.Ping(ctx); err == nil {
		t.Fatal("Ping with a wrong password succeeded")
	}
}

func TestKfakeMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	cluster := kafkatest.Cluster(t, kafkatest.Topics(1, testTopic), kafkatest.With(kfake.TLS(&tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.pool,
	})))
	dir := t.TempDir()
	files := map[string][]byte{"ca.pem": pki.caPEM, "client.pem": pki.clientCertPEM, "client-key.pem": pki.clientKeyPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		"SLUICE_KAFKA_BROKERS":       strings.Join(cluster.ListenAddrs(), ","),
		"SLUICE_KAFKA_TLS_ENABLED":   "true",
		"SLUICE_KAFKA_TLS_CA_FILE":   filepath.Join(dir, "ca.pem"),
		"SLUICE_KAFKA_TLS_CERT_FILE": filepath.Join(dir, "client.pem"),
		"SLUICE_KAFKA_TLS_KEY_FILE":  filepath.Join(dir, "client-key.pem"),
	}
	roundTrip(t, loadEnv(t, env))

	t.Run("untrusted CA", func(t *testing.T) {
		other := newTestPKI(t)
		ca := filepath.Join(dir, "other-ca.pem")
		if err := os.WriteFile(ca, other.caPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		env := maps.Clone(env)
		env["SLUICE_KAFKA_TLS_CA_FILE"] = ca
		opts, err := loadEnv(t, env).Options()
		if err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var unknownCA x509.UnknownAuthorityError
		if err := cl.Ping(ctx); !errors.As(err, &unknownCA) {
			t.Fatalf("Ping trusting another CA: %v, want x509.UnknownAuthorityError", err)
		}
	})
}

type testPKI struct {
	pool          *x509.CertPool
	caPEM         []byte
	server        tls.Certificate // for 127.0.0.1 and localhost
	clientCertPEM []byte
	clientKeyPEM  []byte
}

// newTestPKI makes a throwaway CA with a server and a client certificate.
func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(0)
	template := func(cn string) *x509.Certificate {
		serial++
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
		}
	}

	caKey := newKey()
	caTmpl := template("sluice test CA")
	caTmpl.IsCA = true
	caTmpl.BasicConstraintsValid = true
	caTmpl.KeyUsage = x509.KeyUsageCertSign
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}

	issue := func(tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
		key := newKey()
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	}

	srvTmpl := template("kafka")
	srvTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	srvTmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	srvTmpl.DNSNames = []string{"localhost"}
	srvCert, srvKey := issue(srvTmpl)
	server, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}

	cliTmpl := template("sluice-shipper")
	cliTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	cliCert, cliKey := issue(cliTmpl)

	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testPKI{
		pool:          pool,
		caPEM:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		server:        server,
		clientCertPEM: cliCert,
		clientKeyPEM:  cliKey,
	}
}
