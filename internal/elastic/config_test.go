package elastic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/sluicelogs/sluice/internal/config"
)

// secret is the value of every credential in these tests; no output may
// contain it.
const secret = "hunter2"

// apiKey is an API key in the encoded form, base64 of "id:hunter2".
const apiKey = "aWQ6aHVudGVyMg=="

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
	want := Config{URLs: []string{"http://127.0.0.1:9200"}, RequestTimeout: 60 * time.Second, Flavor: "elasticsearch"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestConfigLoad(t *testing.T) {
	c := load(t, map[string]string{
		"SLUICE_ELASTICSEARCH_URLS":                     "a,b",
		"SLUICE_ELASTICSEARCH_USERNAME":                 "elastic",
		"SLUICE_ELASTICSEARCH_PASSWORD_FILE":            "/run/secrets/pw",
		"SLUICE_ELASTICSEARCH_CA_FILE":                  "/run/secrets/ca.pem",
		"SLUICE_ELASTICSEARCH_TLS_INSECURE_SKIP_VERIFY": "true",
		"SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT":          "1m30s",
		"SLUICE_ELASTICSEARCH_FLAVOR":                   "opensearch",
	})
	want := Config{
		URLs:                  []string{"a", "b"},
		Username:              "elastic",
		PasswordFile:          "/run/secrets/pw",
		CAFile:                "/run/secrets/ca.pem",
		TLSInsecureSkipVerify: true,
		RequestTimeout:        90 * time.Second,
		Flavor:                "opensearch",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("loaded %+v, want %+v", c, want)
	}

	c = load(t, map[string]string{"SLUICE_ELASTICSEARCH_URLS": "https://es1:9200, https://es2:9200/prefix"})
	if want := []string{"https://es1:9200", "https://es2:9200/prefix"}; !reflect.DeepEqual(c.URLs, want) {
		t.Errorf("URLs = %q, want %q", c.URLs, want)
	}

	var bad Config
	err := config.LoadFrom(context.Background(), &bad, envconfig.MapLookuper(map[string]string{
		"SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT": "soon",
	}))
	var p *config.Problem
	if !errors.As(err, &p) || p.Var != "SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT" {
		t.Errorf("load of a bad duration: %v, want a problem with SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT", err)
	}
}

func TestConfigVariableNames(t *testing.T) {
	want := []string{
		"SLUICE_ELASTICSEARCH_URLS",
		"SLUICE_ELASTICSEARCH_USERNAME", "SLUICE_ELASTICSEARCH_PASSWORD", "SLUICE_ELASTICSEARCH_PASSWORD_FILE",
		"SLUICE_ELASTICSEARCH_API_KEY", "SLUICE_ELASTICSEARCH_API_KEY_FILE",
		"SLUICE_ELASTICSEARCH_BEARER_TOKEN", "SLUICE_ELASTICSEARCH_BEARER_TOKEN_FILE",
		"SLUICE_ELASTICSEARCH_CA_FILE", "SLUICE_ELASTICSEARCH_TLS_INSECURE_SKIP_VERIFY",
		"SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT",
		"SLUICE_ELASTICSEARCH_FLAVOR",
	}
	secrets := map[string]bool{
		"SLUICE_ELASTICSEARCH_PASSWORD":     true,
		"SLUICE_ELASTICSEARCH_API_KEY":      true,
		"SLUICE_ELASTICSEARCH_BEARER_TOKEN": true,
	}
	var got []string
	for _, s := range config.Describe(Config{Password: secret, APIKey: secret, BearerToken: secret}) {
		got = append(got, s.Name)
		if s.Help == "" {
			t.Errorf("%s has no help tag", s.Name)
		}
		if s.Secret != secrets[s.Name] {
			t.Errorf("%s: secret = %v, want %v", s.Name, s.Secret, secrets[s.Name])
		}
		if strings.Contains(s.Value, secret) {
			t.Errorf("%s: value shown: %+v", s.Name, s)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("variables:\n got %v\nwant %v", got, want)
	}
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	c := Config{
		// Validate rejects credentials in URLs; they are hidden all the same.
		URLs:        []string{"https://es1:9200", "https://elastic:" + secret + "@es2:9200", "http://u:" + secret + "@[::1"},
		Username:    "elastic",
		Password:    secret,
		APIKey:      secret,
		BearerToken: secret,
	}
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("starting", "elasticsearch", c)
	var txt bytes.Buffer
	slog.New(slog.NewTextHandler(&txt, nil)).Info("starting", "elasticsearch", c)
	outs := []string{
		b.String(), txt.String(),
		fmt.Sprint(c), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%s", c),
		fmt.Sprintf("%v", &c), fmt.Sprintf("%+v", []Config{c}), c.String(),
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want problems")
	}
	outs = append(outs, err.Error())
	for _, out := range outs {
		if strings.Contains(out, secret) {
			t.Errorf("secret printed: %s", out)
		}
		if !strings.Contains(out, "SLUICE_ELASTICSEARCH_") {
			t.Errorf("settings missing: %s", out)
		}
	}
	if want := `SLUICE_ELASTICSEARCH_URLS="https://es1:9200,https://elastic:xxxxx@es2:9200,<redacted>@[::1" SLUICE_ELASTICSEARCH_USERNAME="elastic" SLUICE_ELASTICSEARCH_PASSWORD="<redacted>"`; !strings.HasPrefix(c.String(), want) {
		t.Errorf("String() = %s\nwant prefix  %s", c.String(), want)
	}
	// LogValue must not have changed c.
	if !strings.Contains(c.URLs[1], secret) {
		t.Errorf("LogValue modified the URLs: %q", c.URLs)
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
			name: "https with basic authentication and CA",
			env: map[string]string{
				"SLUICE_ELASTICSEARCH_URLS":     "https://es1:9200,https://es2.example.com/es/",
				"SLUICE_ELASTICSEARCH_USERNAME": "elastic",
				"SLUICE_ELASTICSEARCH_PASSWORD": "pass word Ä",
				"SLUICE_ELASTICSEARCH_CA_FILE":  "/ca.pem",
			},
		},
		{
			name: "API key file",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_API_KEY_FILE": "/key"},
		},
		{
			name: "API key",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_API_KEY": apiKey},
		},
		{
			name: "bearer token, insecure",
			env: map[string]string{
				"SLUICE_ELASTICSEARCH_URLS":                     "https://[::1]:9200",
				"SLUICE_ELASTICSEARCH_BEARER_TOKEN":             "AAEAAWVsYXN0aWMva2liYW5hL3Rva2VuMTpzZWNyZXQ",
				"SLUICE_ELASTICSEARCH_TLS_INSECURE_SKIP_VERIFY": "true",
			},
		},
		{
			name: "password file",
			env: map[string]string{
				"SLUICE_ELASTICSEARCH_USERNAME":      "elastic",
				"SLUICE_ELASTICSEARCH_PASSWORD_FILE": "/pw",
			},
		},
		{
			name: "OpenSearch",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_FLAVOR": "opensearch"},
		},
		{
			name: "flavor in capitals",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_FLAVOR": "OpenSearch"},
		},
		{
			name: "unknown flavor",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_FLAVOR": "solr"},
			want: []string{`SLUICE_ELASTICSEARCH_FLAVOR: must be elasticsearch or opensearch, got "solr"`},
		},
		{
			name: "empty flavor: elasticsearch",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_FLAVOR": ""},
		},
		{
			name: "empty URLs",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_URLS": ""},
			want: []string{"SLUICE_ELASTICSEARCH_URLS: must not be empty"},
		},
		{
			name: "bad URLs",
			env: map[string]string{
				"SLUICE_ELASTICSEARCH_URLS": "127.0.0.1:9200,localhost:9200,ftp://es:21,http://,/es,http://es:9200/?pretty,http://es:x,,http://es#f",
			},
			want: []string{
				`SLUICE_ELASTICSEARCH_URLS: "127.0.0.1:9200" is not a URL: first path segment in URL cannot contain colon`,
				`SLUICE_ELASTICSEARCH_URLS: "localhost:9200" is not an absolute http or https URL`,
				`SLUICE_ELASTICSEARCH_URLS: "ftp://es:21" is not an absolute http or https URL`,
				`SLUICE_ELASTICSEARCH_URLS: "http://" has no host`,
				`SLUICE_ELASTICSEARCH_URLS: "/es" is not an absolute http or https URL`,
				`SLUICE_ELASTICSEARCH_URLS: "http://es:9200/?pretty" must not have a query or fragment`,
				`SLUICE_ELASTICSEARCH_URLS: "http://es:x" is not a URL: invalid port ":x" after host`,
				`SLUICE_ELASTICSEARCH_URLS: "" is not an absolute http or https URL`,
				`SLUICE_ELASTICSEARCH_URLS: "http://es#f" must not have a query or fragment`,
			},
		},
		{
			name: "credentials in a URL",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_URLS": "http://elastic:" + secret + "@es:9200"},
			want: []string{
				`SLUICE_ELASTICSEARCH_URLS: "http://elastic:xxxxx@es:9200" must not contain credentials: use SLUICE_ELASTICSEARCH_USERNAME, SLUICE_ELASTICSEARCH_API_KEY or SLUICE_ELASTICSEARCH_BEARER_TOKEN`,
			},
		},
		{
			name: "credentials in a URL that does not parse",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_URLS": "http://elastic:" + secret + "@es:x"},
			want: []string{
				`SLUICE_ELASTICSEARCH_URLS: "<redacted>@es:x" is not a URL: invalid port ":x" after host`,
			},
		},
		{
			name: "mixed schemes",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_URLS": "https://es1:9200,http://es2:9200"},
			want: []string{"SLUICE_ELASTICSEARCH_URLS: mixes http and https URLs"},
		},
		{
			name: "values and files",
			env: map[string]string{
				"SLUICE_ELASTICSEARCH_USERNAME":      "elastic",
				"SLUICE_ELASTICSEARCH_PASSWORD":      secret,
				"SLUICE_ELASTICSEARCH_PASSWORD_FILE": "/pw",
			},
			want: []string{"SLUICE_ELASTICSEARCH_PASSWORD: must not be set together with SLUICE_ELASTICSEARCH_PASSWORD_FILE"},
		},
		{
			name: "API key and its file",
			env: map[string]string{
				"SLUICE_ELASTICSEARCH_API_KEY":      apiKey,
				"SLUICE_ELASTICSEARCH_API_KEY_FILE": "/key",
			},
			want: []string{"SLUICE_ELASTICSEARCH_API_KEY: must not be set together with SLUICE_ELASTICSEARCH_API_KEY_FILE"},
		},
		{
			name: "bearer token and its file",
			env: map[string]string{
				"SLUICE_ELASTICSEARCH_BEARER_TOKEN":      secret,
				"SLUICE_ELASTICSEARCH_BEARER_TOKEN_FILE": "/token",
			},
			want: []string{"SLUICE_ELASTICSEARCH_BEARER_TOKEN: must not be set together with SLUICE_ELASTICSEARCH_BEARER_TOKEN_FILE"},
		},
		{
			name: "password without user name",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_PASSWORD_FILE": "/pw"},
			want: []string{"SLUICE_ELASTICSEARCH_USERNAME: must be set with SLUICE_ELASTICSEARCH_PASSWORD_FILE"},
		},
		{
			name: "user name without password",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_USERNAME": "elastic"},
			want: []string{"SLUICE_ELASTICSEARCH_PASSWORD: or SLUICE_ELASTICSEARCH_PASSWORD_FILE must be set with SLUICE_ELASTICSEARCH_USERNAME"},
		},
		{
			name: "basic authentication and API key",
			env: map[string]string{
				"SLUICE_ELASTICSEARCH_USERNAME": "elastic",
				"SLUICE_ELASTICSEARCH_PASSWORD": secret,
				"SLUICE_ELASTICSEARCH_API_KEY":  apiKey,
			},
			want: []string{
				"SLUICE_ELASTICSEARCH_API_KEY: must not be set together with SLUICE_ELASTICSEARCH_USERNAME: choose one of basic authentication, API key or bearer token",
			},
		},
		{
			name: "three ways to authenticate",
			env: map[string]string{
				"SLUICE_ELASTICSEARCH_PASSWORD_FILE":     "/pw",
				"SLUICE_ELASTICSEARCH_API_KEY_FILE":      "/key",
				"SLUICE_ELASTICSEARCH_BEARER_TOKEN_FILE": "/token",
			},
			want: []string{
				"SLUICE_ELASTICSEARCH_USERNAME: must be set with SLUICE_ELASTICSEARCH_PASSWORD_FILE",
				"SLUICE_ELASTICSEARCH_API_KEY_FILE: must not be set together with SLUICE_ELASTICSEARCH_PASSWORD_FILE: choose one of basic authentication, API key or bearer token",
				"SLUICE_ELASTICSEARCH_BEARER_TOKEN_FILE: must not be set together with SLUICE_ELASTICSEARCH_PASSWORD_FILE: choose one of basic authentication, API key or bearer token",
			},
		},
		{
			name: "API key not encoded",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_API_KEY": "id:" + secret},
			want: []string{`SLUICE_ELASTICSEARCH_API_KEY: is not an encoded API key (base64 of id:key, the "encoded" field of the create API key response)`},
		},
		{
			name: "malformed secrets",
			env: map[string]string{
				"SLUICE_ELASTICSEARCH_USERNAME":     "elastic",
				"SLUICE_ELASTICSEARCH_PASSWORD":     secret + "\n",
				"SLUICE_ELASTICSEARCH_BEARER_TOKEN": "Bearer " + secret,
			},
			want: []string{
				"SLUICE_ELASTICSEARCH_BEARER_TOKEN: must not be set together with SLUICE_ELASTICSEARCH_USERNAME: choose one of basic authentication, API key or bearer token",
				"SLUICE_ELASTICSEARCH_PASSWORD: contains a control character (a stray newline?)",
				"SLUICE_ELASTICSEARCH_BEARER_TOKEN: contains a space or a non-ASCII character",
			},
		},
		{
			name: "TLS settings with http URLs",
			env: map[string]string{
				"SLUICE_ELASTICSEARCH_URLS":                     "http://es1:9200,http://es2:9200",
				"SLUICE_ELASTICSEARCH_CA_FILE":                  "/ca.pem",
				"SLUICE_ELASTICSEARCH_TLS_INSECURE_SKIP_VERIFY": "true",
			},
			want: []string{
				"SLUICE_ELASTICSEARCH_CA_FILE: is set but SLUICE_ELASTICSEARCH_URLS has no https URL",
				"SLUICE_ELASTICSEARCH_TLS_INSECURE_SKIP_VERIFY: is set but SLUICE_ELASTICSEARCH_URLS has no https URL",
			},
		},
		{
			name: "zero timeout",
			env:  map[string]string{"SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT": "0s"},
			want: []string{"SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT: must be positive, got 0s"},
		},
		{
			name: "everything at once",
			env: map[string]string{
				"SLUICE_ELASTICSEARCH_URLS":            "es:9200",
				"SLUICE_ELASTICSEARCH_USERNAME":        "elastic",
				"SLUICE_ELASTICSEARCH_API_KEY":         secret,
				"SLUICE_ELASTICSEARCH_API_KEY_FILE":    "/key",
				"SLUICE_ELASTICSEARCH_CA_FILE":         "/ca.pem",
				"SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT": "-1s",
			},
			want: []string{
				`SLUICE_ELASTICSEARCH_URLS: "es:9200" is not an absolute http or https URL`,
				"SLUICE_ELASTICSEARCH_API_KEY: must not be set together with SLUICE_ELASTICSEARCH_API_KEY_FILE",
				"SLUICE_ELASTICSEARCH_PASSWORD: or SLUICE_ELASTICSEARCH_PASSWORD_FILE must be set with SLUICE_ELASTICSEARCH_USERNAME",
				"SLUICE_ELASTICSEARCH_API_KEY: must not be set together with SLUICE_ELASTICSEARCH_USERNAME: choose one of basic authentication, API key or bearer token",
				`SLUICE_ELASTICSEARCH_API_KEY: is not an encoded API key (base64 of id:key, the "encoded" field of the create API key response)`,
				"SLUICE_ELASTICSEARCH_CA_FILE: is set but SLUICE_ELASTICSEARCH_URLS has no https URL",
				"SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT: must be positive, got -1s",
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
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error contains a secret: %v", err)
			}
			// Every problem is a *config.Problem naming a variable.
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var p *config.Problem
				if !errors.As(e, &p) || !strings.HasPrefix(p.Var, "SLUICE_ELASTICSEARCH_") {
					t.Errorf("problem %q does not name a variable", e)
				}
			}
		})
	}
}
