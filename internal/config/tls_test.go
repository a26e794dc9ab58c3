package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/internal/testcerts"
)

// selfSigned returns a self-signed certificate for name and its key, PEM.
func selfSigned(t *testing.T, name string) (certPEM, keyPEM []byte) {
	p := testcerts.SelfSigned(t, name)
	return p.CertPEM, p.KeyPEM
}

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certPEM, keyPEM := selfSigned(t, "broker.example")
	ca := write("ca.pem", certPEM)
	cert, key := write("client.pem", certPEM), write("client.key", keyPEM)
	garbage := write("garbage.pem", []byte("not a certificate"))
	missing := filepath.Join(dir, "missing.pem")

	t.Run("system roots", func(t *testing.T) {
		tc, err := TLS{}.Config()
		if err != nil {
			t.Fatal(err)
		}
		if tc.MinVersion != tls.VersionTLS12 || tc.RootCAs != nil || tc.Certificates != nil ||
			tc.ServerName != "" || tc.InsecureSkipVerify {
			t.Errorf("config %+v, want TLS 1.2 and nothing else", tc)
		}
	})
	t.Run("CA, client certificate, server name", func(t *testing.T) {
		tc, err := TLS{CAFile: ca, CAVar: "SLUICE_CA", CertFile: cert, KeyFile: key, CertVar: "SLUICE_CERT",
			ServerName: "broker.example"}.Config()
		if err != nil {
			t.Fatal(err)
		}
		if tc.ServerName != "broker.example" || len(tc.Certificates) != 1 || tc.InsecureSkipVerify {
			t.Errorf("config %+v", tc)
		}
		// The pool verifies a certificate of the CA for the server name.
		leaf, err := x509.ParseCertificate(tc.Certificates[0].Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: tc.RootCAs, DNSName: tc.ServerName}); err != nil {
			t.Errorf("the CA file's pool does not verify its certificate: %v", err)
		}
	})
	t.Run("insecure", func(t *testing.T) {
		tc, err := TLS{InsecureSkipVerify: true}.Config()
		if err != nil || !tc.InsecureSkipVerify {
			t.Errorf("config %+v, %v; want verification off", tc, err)
		}
	})
	for _, tt := range []struct {
		name    string
		tls     TLS
		wantVar string
		want    string
	}{
		{"missing CA file", TLS{CAFile: missing, CAVar: "SLUICE_CA"}, "SLUICE_CA", "no such file"},
		{"CA file without PEM", TLS{CAFile: garbage, CAVar: "SLUICE_CA"}, "SLUICE_CA", "no PEM certificate"},
		{"bad key", TLS{CertFile: cert, KeyFile: garbage, CertVar: "SLUICE_CERT"}, "SLUICE_CERT", "load client certificate and key"},
		{"missing certificate", TLS{CertFile: missing, KeyFile: key, CertVar: "SLUICE_CERT"}, "SLUICE_CERT", "no such file"},
		{"key without certificate", TLS{KeyFile: key, CertVar: "SLUICE_CERT"}, "SLUICE_CERT", "load client certificate and key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := tt.tls.Config()
			var p *Problem
			if !errors.As(err, &p) || p.Var != tt.wantVar || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Config() = %v, %v; want a problem of %s: %s", tc, err, tt.wantVar, tt.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "not a certificate") {
				t.Errorf("error %q shows a file's content", err)
			}
		})
	}
}
