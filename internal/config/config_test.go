package config

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

type testInner struct {
	Brokers  []string `env:"BROKERS, default=a:1,b:2" help:"Seed brokers, comma-separated."`
	Port     int      `env:"PORT" help:"Port | number."`
	Password string   `env:"PASSWORD, default=do-not-print" secret:"true" help:"Password."`
}

type testConfig struct {
	Name    string        `env:"NAME, default=sluice" help:"Name of the <thing>."`
	Timeout time.Duration `env:"TIMEOUT, default=5s" help:"How long to wait."`
	Enabled bool          `env:"ENABLED" help:"Turn it on."`
	Inner   testInner
	Sub     *testInner `env:", prefix=SUB_"`

	NoEnv    string
	internal string //nolint:unused // must be skipped by Describe
}

func TestLoadFrom(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want testConfig
	}{
		{
			name: "defaults",
			env:  nil,
			want: testConfig{
				Name:    "sluice",
				Timeout: 5 * time.Second,
				Inner:   testInner{Brokers: []string{"a:1", "b:2"}, Password: "do-not-print"},
				Sub:     &testInner{Brokers: []string{"a:1", "b:2"}, Password: "do-not-print"},
			},
		},
		{
			name: "set",
			env: map[string]string{
				"SLUICE_NAME":         "x",
				"SLUICE_TIMEOUT":      "1m",
				"SLUICE_ENABLED":      "true",
				"SLUICE_BROKERS":      "h1:9092, h2:9092",
				"SLUICE_PORT":         "7",
				"SLUICE_SUB_PASSWORD": "pw",
				"NAME":                "ignored: no prefix",
			},
			want: testConfig{
				Name:    "x",
				Timeout: time.Minute,
				Enabled: true,
				Inner:   testInner{Brokers: []string{"h1:9092", "h2:9092"}, Port: 7, Password: "do-not-print"},
				Sub:     &testInner{Brokers: []string{"a:1", "b:2"}, Password: "pw"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got testConfig
			if err := LoadFrom(context.Background(), &got, envconfig.MapLookuper(tt.env)); err != nil {
				t.Fatalf("LoadFrom: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v (sub %+v)\nwant %+v (sub %+v)", got, got.Sub, tt.want, tt.want.Sub)
			}
		})
	}
}

func TestLoadFromDecodeErrorNamesVariable(t *testing.T) {
	tests := []struct {
		env     map[string]string
		wantVar string
		wantMsg string
	}{
		{
			env:     map[string]string{"SLUICE_ENABLED": "maybe"},
			wantVar: "SLUICE_ENABLED",
			wantMsg: `SLUICE_ENABLED: strconv.ParseBool: parsing "maybe": invalid syntax`,
		},
		{
			env:     map[string]string{"SLUICE_TIMEOUT": "soon"},
			wantVar: "SLUICE_TIMEOUT",
			wantMsg: `SLUICE_TIMEOUT: time: invalid duration "soon"`,
		},
		{
			// Nested twice (Sub, then Port): both Go field names are dropped.
			env:     map[string]string{"SLUICE_SUB_PORT": "x"},
			wantVar: "SLUICE_SUB_PORT",
			wantMsg: `SLUICE_SUB_PORT: strconv.ParseInt: parsing "x": invalid syntax`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.wantVar, func(t *testing.T) {
			var c testConfig
			err := LoadFrom(context.Background(), &c, envconfig.MapLookuper(tt.env))
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("LoadFrom error %v, want a *Problem", err)
			}
			if p.Var != tt.wantVar {
				t.Errorf("Var = %q, want %q", p.Var, tt.wantVar)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("error = %q, want %q", err, tt.wantMsg)
			}
		})
	}
}

func TestLoadFromStructError(t *testing.T) {
	var c struct {
		X string `env:"X,bogus"`
	}
	err := LoadFrom(context.Background(), &c, envconfig.MapLookuper(nil))
	if !errors.Is(err, envconfig.ErrUnknownOption) {
		t.Fatalf("error %v, want ErrUnknownOption", err)
	}
	var p *Problem
	if errors.As(err, &p) {
		t.Errorf("a struct error must not be blamed on a variable: %v", err)
	}
}

func TestLoadUsesPrefixedProcessEnv(t *testing.T) {
	t.Setenv("SLUICE_NAME", "from-env")
	t.Setenv("NAME", "unprefixed")
	var c testConfig
	if err := Load(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "from-env" {
		t.Errorf("Name = %q, want from-env", c.Name)
	}
}

func TestDescribe(t *testing.T) {
	c := testConfig{
		Name:  "n",
		Inner: testInner{Brokers: []string{"x:1", "y:2"}, Password: "hunter2"},
	}
	want := []Setting{
		{Name: "SLUICE_NAME", Field: "Name", Type: "string", Default: "sluice", Value: "n", Help: "Name of the <thing>."},
		{Name: "SLUICE_TIMEOUT", Field: "Timeout", Type: "duration", Default: "5s", Value: "0s", Help: "How long to wait."},
		{Name: "SLUICE_ENABLED", Field: "Enabled", Type: "bool", Value: "false", Help: "Turn it on."},
		{Name: "SLUICE_BROKERS", Field: "Inner.Brokers", Type: "string list", Default: "a:1,b:2", Value: "x:1,y:2", Help: "Seed brokers, comma-separated."},
		{Name: "SLUICE_PORT", Field: "Inner.Port", Type: "int", Value: "0", Help: "Port | number."},
		{Name: "SLUICE_PASSWORD", Field: "Inner.Password", Type: "string", Default: Redacted, Value: Redacted, Help: "Password.", Secret: true},
		{Name: "SLUICE_SUB_BROKERS", Field: "Sub.Brokers", Type: "string list", Default: "a:1,b:2", Help: "Seed brokers, comma-separated."},
		{Name: "SLUICE_SUB_PORT", Field: "Sub.Port", Type: "int", Help: "Port | number."},
		{Name: "SLUICE_SUB_PASSWORD", Field: "Sub.Password", Type: "string", Default: Redacted, Help: "Password.", Secret: true},
	}
	for _, in := range []any{c, &c} {
		got := Describe(in)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Describe(%T):\n got %+v\nwant %+v", in, got, want)
		}
	}
	if got := Describe((*testConfig)(nil)); len(got) != len(want) || got[0].Value != "" {
		t.Errorf("Describe(nil pointer) = %+v, want defaults without values", got)
	}
	if got := Describe(42); got != nil {
		t.Errorf("Describe(42) = %v, want nil", got)
	}
}

func TestParseEnvTag(t *testing.T) {
	tests := []struct {
		tag  string
		key  string
		opts envOpts
	}{
		{"A", "A", envOpts{delimiter: ","}},
		{"A, default=x,y", "A", envOpts{def: "x,y", delimiter: ","}},
		{"A,required", "A", envOpts{required: true, delimiter: ","}},
		{"A,delimiter=;,default=1;2", "A", envOpts{def: "1;2", delimiter: ";"}},
		{", prefix=P_", "", envOpts{prefix: "P_", delimiter: ","}},
		{"A,DEFAULT=Up", "A", envOpts{def: "Up", delimiter: ","}},
	}
	for _, tt := range tests {
		key, opts := parseEnvTag(tt.tag)
		if key != tt.key || opts != tt.opts {
			t.Errorf("parseEnvTag(%q) = %q, %+v; want %q, %+v", tt.tag, key, opts, tt.key, tt.opts)
		}
	}
}

func TestWriteUsage(t *testing.T) {
	var b bytes.Buffer
	c := testConfig{Inner: testInner{Password: "hunter2"}}
	if err := WriteUsage(&b, c); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 10 {
		t.Fatalf("got %d lines, want header + 9:\n%s", len(lines), out)
	}
	col := strings.Index(lines[0], "DESCRIPTION")
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("description column not aligned at %d: %q", col, l)
		}
	}
	for _, want := range []string{
		"SLUICE_TIMEOUT ", " duration ", " 5s ", "How long to wait.",
		"SLUICE_PASSWORD", "Password. (secret)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q:\n%s", want, out)
		}
	}
	assertNoSecret(t, out)
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, testConfig{Inner: testInner{Password: "hunter2"}}); err != nil {
		t.Fatal(err)
	}
	want := "| Variable | Default | Description |\n" +
		"|---|---|---|\n" +
		"| `SLUICE_NAME` | `sluice` | Name of the \\<thing\\>. |\n" +
		"| `SLUICE_TIMEOUT` | `5s` | How long to wait. |\n" +
		"| `SLUICE_ENABLED` |  | Turn it on. |\n" +
		"| `SLUICE_BROKERS` | `a:1,b:2` | Seed brokers, comma-separated. |\n" +
		"| `SLUICE_PORT` |  | Port \\| number. |\n" +
		"| `SLUICE_PASSWORD` | `<redacted>` | Password. (secret) |\n" +
		"| `SLUICE_SUB_BROKERS` | `a:1,b:2` | Seed brokers, comma-separated. |\n" +
		"| `SLUICE_SUB_PORT` |  | Port \\| number. |\n" +
		"| `SLUICE_SUB_PASSWORD` | `<redacted>` | Password. (secret) |\n"
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	assertNoSecret(t, b.String())
}

func TestLogValueRedactsSecrets(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(slog.NewTextHandler(&b, nil))
	c := testConfig{Name: "n", Inner: testInner{Password: "hunter2"}}
	log.Info("starting", "config", LogValue(c))
	out := b.String()
	if !strings.Contains(out, "config.SLUICE_NAME=n") || !strings.Contains(out, "config.SLUICE_PASSWORD=<redacted>") {
		t.Errorf("unexpected log line: %s", out)
	}
	assertNoSecret(t, out)
}

func assertNoSecret(t *testing.T, out string) {
	t.Helper()
	for _, secret := range []string{"hunter2", "do-not-print"} {
		if strings.Contains(out, secret) {
			t.Errorf("output contains secret %q:\n%s", secret, out)
		}
	}
}

func TestProblems(t *testing.T) {
	var p Problems
	if err := p.Err(); err != nil {
		t.Fatalf("empty Problems.Err() = %v, want nil", err)
	}
	cause := errors.New("boom")
	p.Add(Var("KAFKA_BROKERS"), "must not be empty")
	p.Add(Var("KAFKA_TLS_CA_FILE"), "read: %w", cause)
	p.AddErr(Var("X"), nil)

	var nested Problems
	nested.Add(Var("LOG_LEVEL"), "must be one of debug, info, warn, error")
	nested.Add(Var("LOG_FORMAT"), "must be text or json")
	p.Merge(nested.Err())
	p.Merge(nil)

	err := p.Err()
	want := "SLUICE_KAFKA_BROKERS: must not be empty\n" +
		"SLUICE_KAFKA_TLS_CA_FILE: read: boom\n" +
		"SLUICE_LOG_LEVEL: must be one of debug, info, warn, error\n" +
		"SLUICE_LOG_FORMAT: must be text or json"
	if err.Error() != want {
		t.Errorf("got:\n%s\nwant:\n%s", err, want)
	}
	if !errors.Is(err, cause) {
		t.Error("errors.Is(err, cause) = false, want true")
	}
	var pr *Problem
	if !errors.As(err, &pr) || pr.Var != "SLUICE_KAFKA_BROKERS" {
		t.Errorf("errors.As: %+v", pr)
	}
}
