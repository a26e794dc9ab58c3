package kafka

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/sluicelogs/sluice/internal/config"
)

func load(t *testing.T, env map[string]string) Config {
	t.Helper()
	var c Config
	if err := config.LoadFrom(context.Background(), &c, envconfig.MapLookuper(env)); err != nil {
		t.Fatalf("load: %v", err)
	}
	return c
}

func TestConfigDefaults(t *testing.T) {
	c := load(t, nil)
	want := Config{Brokers: []string{"127.0.0.1:9092"}, SASLMechanism: "none", Compression: "snappy", TopicPrefix: "logs"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestConfigVariableNames(t *testing.T) {
	want := []string{
		"SLUICE_KAFKA_BROKERS", "SLUICE_KAFKA_CLIENT_ID",
		"SLUICE_KAFKA_TLS_ENABLED", "SLUICE_KAFKA_TLS_CA_FILE", "SLUICE_KAFKA_TLS_CERT_FILE",
		"SLUICE_KAFKA_TLS_KEY_FILE", "SLUICE_KAFKA_TLS_SERVER_NAME", "SLUICE_KAFKA_TLS_INSECURE_SKIP_VERIFY",
		"SLUICE_KAFKA_SASL_MECHANISM", "SLUICE_KAFKA_SASL_USERNAME", "SLUICE_KAFKA_SASL_PASSWORD",
		"SLUICE_KAFKA_SASL_PASSWORD_FILE", "SLUICE_KAFKA_COMPRESSION", "SLUICE_TOPIC_PREFIX",
	}
	var got []string
	for _, s := range config.Describe(Config{SASLPassword: "hunter2"}) {
		got = append(got, s.Name)
		if s.Help == "" {
			t.Errorf("%s has no help tag", s.Name)
		}
		if strings.Contains(s.Value, "hunter2") || (s.Name == "SLUICE_KAFKA_SASL_PASSWORD" && !s.Secret) {
			t.Errorf("%s: password not treated as secret: %+v", s.Name, s)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("variables:\n got %v\nwant %v", got, want)
	}
}

func TestConfigNeverPrintsPassword(t *testing.T) {
	c := Config{Brokers: []string{"k:9092"}, SASLMechanism: "PLAIN", SASLUsername: "u", SASLPassword: "hunter2"}
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("starting", "kafka", c)
	for _, out := range []string{
		b.String(),
		fmt.Sprint(c), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%s", c),
		fmt.Sprintf("%v", &c), fmt.Sprintf("%+v", []Config{c}),
	} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("password printed: %s", out)
		}
		if !strings.Contains(out, "SLUICE_KAFKA_SASL_USERNAME") {
			t.Errorf("settings missing: %s", out)
		}
	}
	if want := `SLUICE_KAFKA_BROKERS="k:9092" SLUICE_KAFKA_CLIENT_ID=""`; !strings.HasPrefix(c.String(), want) {
		t.Errorf("String() = %s, want prefix %s", c.String(), want)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // one line per problem, in order; nil means valid
	}{
		{name: "defaults"},
		{
			name: "brokers and mechanism case",
			env: map[string]string{
				"SLUICE_KAFKA_BROKERS":        "k1:9092,[::1]:9093",
				"SLUICE_KAFKA_SASL_MECHANISM": "scram-sha-512",
				"SLUICE_KAFKA_SASL_USERNAME":  "u",
				"SLUICE_KAFKA_SASL_PASSWORD":  "p",
			},
		},
		{
			name: "empty brokers",
			env:  map[string]string{"SLUICE_KAFKA_BROKERS": ""},
			want: []string{"SLUICE_KAFKA_BROKERS: must not be empty"},
		},
		{
			name: "bad brokers",
			env:  map[string]string{"SLUICE_KAFKA_BROKERS": "k1,k2:0,:9092,k3:x"},
			want: []string{
				`SLUICE_KAFKA_BROKERS: "k1" is not host:port`,
				`SLUICE_KAFKA_BROKERS: "k2:0" is not host:port`,
				`SLUICE_KAFKA_BROKERS: ":9092" is not host:port`,
				`SLUICE_KAFKA_BROKERS: "k3:x" is not host:port`,
			},
		},
		{
			name: "tls settings without tls",
			env: map[string]string{
				"SLUICE_KAFKA_TLS_CA_FILE":              "/ca.pem",
				"SLUICE_KAFKA_TLS_INSECURE_SKIP_VERIFY": "true",
			},
			want: []string{
				"SLUICE_KAFKA_TLS_CA_FILE: is set but SLUICE_KAFKA_TLS_ENABLED is not true",
				"SLUICE_KAFKA_TLS_INSECURE_SKIP_VERIFY: is set but SLUICE_KAFKA_TLS_ENABLED is not true",
			},
		},
		{
			name: "cert without key",
			env: map[string]string{
				"SLUICE_KAFKA_TLS_ENABLED":   "true",
				"SLUICE_KAFKA_TLS_CERT_FILE": "/c.pem",
			},
			want: []string{"SLUICE_KAFKA_TLS_KEY_FILE: must be set with SLUICE_KAFKA_TLS_CERT_FILE"},
		},
		{
			name: "key without cert",
			env: map[string]string{
				"SLUICE_KAFKA_TLS_ENABLED":  "true",
				"SLUICE_KAFKA_TLS_KEY_FILE": "/k.pem",
			},
			want: []string{"SLUICE_KAFKA_TLS_CERT_FILE: must be set with SLUICE_KAFKA_TLS_KEY_FILE"},
		},
		{
			name: "unknown mechanism",
			env:  map[string]string{"SLUICE_KAFKA_SASL_MECHANISM": "GSSAPI"},
			want: []string{`SLUICE_KAFKA_SASL_MECHANISM: "GSSAPI" is not one of none, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		},
		{
			name: "credentials without mechanism",
			env:  map[string]string{"SLUICE_KAFKA_SASL_USERNAME": "u"},
			want: []string{"SLUICE_KAFKA_SASL_MECHANISM: is none but SASL credentials are set"},
		},
		{
			name: "plain without credentials",
			env:  map[string]string{"SLUICE_KAFKA_SASL_MECHANISM": "plain"},
			want: []string{
				"SLUICE_KAFKA_SASL_USERNAME: must be set with SLUICE_KAFKA_SASL_MECHANISM=PLAIN",
				"SLUICE_KAFKA_SASL_PASSWORD: or SLUICE_KAFKA_SASL_PASSWORD_FILE must be set with SLUICE_KAFKA_SASL_MECHANISM=PLAIN",
			},
		},
		{
			name: "password and password file",
			env: map[string]string{
				"SLUICE_KAFKA_SASL_MECHANISM":     "SCRAM-SHA-256",
				"SLUICE_KAFKA_SASL_USERNAME":      "u",
				"SLUICE_KAFKA_SASL_PASSWORD":      "hunter2",
				"SLUICE_KAFKA_SASL_PASSWORD_FILE": "/pw",
			},
			want: []string{"SLUICE_KAFKA_SASL_PASSWORD: must not be set together with SLUICE_KAFKA_SASL_PASSWORD_FILE"},
		},
		{
			name: "unknown compression",
			env:  map[string]string{"SLUICE_KAFKA_COMPRESSION": "brotli"},
			want: []string{`SLUICE_KAFKA_COMPRESSION: "brotli" is not one of snappy, lz4, zstd, gzip, none`},
		},
		{
			name: "bad prefix",
			env:  map[string]string{"SLUICE_TOPIC_PREFIX": ".logs"},
			want: []string{`SLUICE_TOPIC_PREFIX: invalid topic prefix ".logs": must be dot-separated non-empty elements of a-z, A-Z, 0-9, '_' and '-'`},
		},
		{
			name: "everything at once",
			env: map[string]string{
				"SLUICE_KAFKA_BROKERS":        "",
				"SLUICE_KAFKA_SASL_MECHANISM": "x",
				"SLUICE_TOPIC_PREFIX":         "",
			},
			want: []string{
				"SLUICE_KAFKA_BROKERS: must not be empty",
				`SLUICE_KAFKA_SASL_MECHANISM: "x" is not one of none, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`,
				`SLUICE_TOPIC_PREFIX: invalid topic prefix "": must be dot-separated non-empty elements of a-z, A-Z, 0-9, '_' and '-'`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := load(t, tt.env).Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate():\n got %q\nwant %q", got, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error contains the password: %v", err)
			}
			var p *config.Problem
			if !errors.As(err, &p) {
				t.Errorf("error is not a *config.Problem: %v", err)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pki := newTestPKI(t)
	caFile := write("ca.pem", string(pki.caPEM))
	certFile := write("client.pem", string(pki.clientCertPEM))
	keyFile := write("client-key.pem", string(pki.clientKeyPEM))
	pwFile := write("pw", "s3cret\n")
	emptyFile := write("empty", "\n")
	garbage := write("garbage", "not pem")

	base := Config{Brokers: []string{"k1:9092", "k2:9092"}, SASLMechanism: "none", TopicPrefix: "logs"}
	with := func(f func(*Config)) Config {
		c := base
		f(&c)
		return c
	}
	tests := []struct {
		name     string
		cfg      Config
		clientID string
		tls      bool
		certs    int
		sasl     string
		wantVar  string // error expected, naming this variable
	}{
		{name: "plaintext", cfg: base},
		{name: "client id", cfg: with(func(c *Config) { c.ClientID = "sluice-test" }), clientID: "sluice-test"},
		{name: "tls system roots", cfg: with(func(c *Config) { c.TLSEnabled = true }), tls: true},
		{
			name: "mutual tls",
			cfg: with(func(c *Config) {
				c.TLSEnabled, c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile = true, caFile, certFile, keyFile
			}),
			tls: true, certs: 1,
		},
		{
			name: "scram with password file",
			cfg: with(func(c *Config) {
				c.SASLMechanism, c.SASLUsername, c.SASLPasswordFile = "scram-sha-256", "u", pwFile
			}),
			sasl: "SCRAM-SHA-256",
		},
		{
			name: "plain",
			cfg:  with(func(c *Config) { c.SASLMechanism, c.SASLUsername, c.SASLPassword = "Plain", "u", "p" }),
			sasl: "PLAIN",
		},
		{name: "invalid", cfg: with(func(c *Config) { c.Brokers = nil }), wantVar: "SLUICE_KAFKA_BROKERS"},
		{
			name:    "missing CA file",
			cfg:     with(func(c *Config) { c.TLSEnabled, c.TLSCAFile = true, filepath.Join(dir, "nope") }),
			wantVar: "SLUICE_KAFKA_TLS_CA_FILE",
		},
		{
			name:    "CA file without PEM",
			cfg:     with(func(c *Config) { c.TLSEnabled, c.TLSCAFile = true, garbage }),
			wantVar: "SLUICE_KAFKA_TLS_CA_FILE",
		},
		{
			name:    "bad key pair",
			cfg:     with(func(c *Config) { c.TLSEnabled, c.TLSCertFile, c.TLSKeyFile = true, certFile, garbage }),
			wantVar: "SLUICE_KAFKA_TLS_CERT_FILE",
		},
		{
			name: "missing password file",
			cfg: with(func(c *Config) {
				c.SASLMechanism, c.SASLUsername, c.SASLPasswordFile = "PLAIN", "u", filepath.Join(dir, "nope")
			}),
			wantVar: "SLUICE_KAFKA_SASL_PASSWORD_FILE",
		},
		{
			name: "empty password file",
			cfg: with(func(c *Config) {
				c.SASLMechanism, c.SASLUsername, c.SASLPasswordFile = "PLAIN", "u", emptyFile
			}),
			wantVar: "SLUICE_KAFKA_SASL_PASSWORD_FILE",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := tt.cfg.Options()
			if tt.wantVar != "" {
				var p *config.Problem
				if !errors.As(err, &p) || p.Var != tt.wantVar {
					t.Fatalf("Options() error = %v, want a problem with %s", err, tt.wantVar)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error contains the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Options(): %v", err)
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()

			if got := cl.OptValue(kgo.SeedBrokers); !reflect.DeepEqual(got, tt.cfg.Brokers) {
				t.Errorf("seed brokers = %v, want %v", got, tt.cfg.Brokers)
			}
			if id, set := cl.OptValues(kgo.ClientID)[0], cl.OptValues(kgo.ClientID)[1].(bool); tt.clientID != "" && (id != tt.clientID || !set) {
				t.Errorf("client id = %v (set %v), want %q", id, set, tt.clientID)
			}
			tc, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config)
			if (tc != nil) != tt.tls {
				t.Fatalf("TLS config %v, want TLS %v", tc, tt.tls)
			}
			if tc != nil {
				if tc.MinVersion != tls.VersionTLS12 || len(tc.Certificates) != tt.certs {
					t.Errorf("TLS config: min version %x, %d certificates; want TLS 1.2, %d", tc.MinVersion, len(tc.Certificates), tt.certs)
				}
				if (tc.RootCAs != nil) != (tt.cfg.TLSCAFile != "") {
					t.Errorf("RootCAs set = %v, want %v", tc.RootCAs != nil, tt.cfg.TLSCAFile != "")
				}
			}
			var mechs []string
			if ms, ok := cl.OptValue(kgo.SASL).([]sasl.Mechanism); ok {
				for _, m := range ms {
					mechs = append(mechs, m.Name())
				}
			}
			if want := []string{tt.sasl}; tt.sasl != "" && !reflect.DeepEqual(mechs, want) || tt.sasl == "" && len(mechs) != 0 {
				t.Errorf("SASL mechanisms = %v, want %q", mechs, tt.sasl)
			}
		})
	}
}
