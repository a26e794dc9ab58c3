package testcerts

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

// TestSelfSigned: the pair loads as a TLS key pair, and the certificate
// verifies as a server for 127.0.0.1 and its name against itself as CA;
// two calls differ.
func TestSelfSigned(t *testing.T) {
	p := SelfSigned(t, "kafka")
	if _, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.Cert)
	for _, host := range []string{"127.0.0.1", "kafka", "localhost"} {
		if _, err := p.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if q := SelfSigned(t, "kafka"); q.Cert.SerialNumber.Cmp(p.Cert.SerialNumber) == 0 {
		t.Error("two calls made the same serial number")
	}
}
