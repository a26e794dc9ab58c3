package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned returns a self-signed certificate for name and its key, PEM.
func selfSigned(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
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
