package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sethvargo/go-envconfig"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testcerts"
)

// tlsFiles writes a server's and a client's certificates and returns the
// settings of a gateway serving TLS to clients the client's certificate
// (its own CA) signed, with what a client needs: the roots that trust the
// server, and the client's certificate.
func tlsFiles(t *testing.T) (roots *x509.CertPool, cert tls.Certificate, env map[string]string) {
	dir := t.TempDir()
	server, client := testcerts.SelfSigned(t, "gateway"), testcerts.SelfSigned(t, "client")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	roots = x509.NewCertPool()
	roots.AddCert(server.Cert)
	cert, err := tls.X509KeyPair(client.CertPEM, client.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return roots, cert, map[string]string{
		"SLUICE_GATEWAY_TLS_CERT_FILE":      write("server.pem", server.CertPEM),
		"SLUICE_GATEWAY_TLS_KEY_FILE":       write("server.key", server.KeyPEM),
		"SLUICE_GATEWAY_TLS_CLIENT_CA_FILE": write("client-ca.pem", client.CertPEM),
	}
}

// TestGatewayMutualTLS: with a client CA, the gateway serves HTTPS and takes
// only clients presenting a certificate that CA signed, besides their
// credentials.
func TestGatewayMutualTLS(t *testing.T) {
	roots, cert, env := tlsFiles(t)
	e := startEnv(t, env)
	body, _ := proto.Marshal(otlpRequest(nil, otlpLines(2, "tls")...))
	post := func(certs []tls.Certificate) (int, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodPost, "https://"+e.g.Addr()+"/v1/logs", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", basic("shop", "shop-secret"))
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := post([]tls.Certificate{cert}); err != nil || code != http.StatusOK {
		t.Fatalf("with a client certificate: %d %v", code, err)
	}
	if code, err := post(nil); err == nil {
		t.Fatalf("without a client certificate: answered %d", code)
	}
	if n := len(e.readRaw(t, "shop")); n != 2 {
		t.Fatalf("%d records", n)
	}
}

// TestGatewayInsecureTrustUsername: against a Kafka without authentication (a
// development stack), SLUICE_GATEWAY_INSECURE_TRUST_USERNAME takes the
// user name as the tenant and checks no password.
func TestGatewayInsecureTrustUsername(t *testing.T) {
	c := kafkatest.Cluster(t, kafkatest.Topics(1, "logs.raw.shop"))
	var cfg Config
	vars := map[string]string{
		"SLUICE_KAFKA_BROKERS": strings.Join(c.ListenAddrs(), ","), "SLUICE_TELEMETRY_ADDR": "",
		"SLUICE_GATEWAY_ADDR": "127.0.0.1:0", "SLUICE_GATEWAY_INSECURE_TRUST_USERNAME": "true",
	}
	if err := config.LoadFrom(context.Background(), &cfg, envconfig.MapLookuper(vars)); err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	defer g.pool.close()
	e := &testEnv{url: srv.URL}
	if r := e.post(t, "/v1/lines", []byte("hello\n"), "Authorization", basic("shop", "anything")); r.status != http.StatusOK {
		t.Fatalf("answer %d %q", r.status, r.body)
	}
	if r := e.post(t, "/v1/lines", []byte("hello\n"), "Authorization", basic("Not_A_Tenant", "")); r.status != http.StatusUnauthorized {
		t.Fatalf("a user name that is no tenant: %d", r.status)
	}
	if recs := kafkatest.ReadAll(t, c, 10*time.Second, "logs.raw.shop"); len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
}

// TestGatewayClientPool: credentials are checked again after
// SLUICE_GATEWAY_AUTH_TTL (a new client, a new SASL handshake); with
// SLUICE_GATEWAY_MAX_CLIENTS=1 the unused client of one tenant makes room
// for another's.
func TestGatewayClientPool(t *testing.T) {
	e := startEnv(t, map[string]string{"SLUICE_GATEWAY_AUTH_TTL": "300ms", "SLUICE_GATEWAY_MAX_CLIENTS": "1"})
	req := otlpRequest(nil, otlpLines(1, "pool")...)
	for _, tenant := range []string{"shop", "shop", "web", "shop"} {
		if r := e.postOTLP(t, tenant, req); r.status != http.StatusOK {
			t.Fatalf("%s: %d %q", tenant, r.status, r.body)
		}
	}
	testutilCount(t, e, `sluice_gateway_auth_total{result="verified"}`, 3)
	testutilCount(t, e, `sluice_gateway_auth_total{result="cached"}`, 1)
	testutilCount(t, e, `sluice_gateway_kafka_clients`, 1)
	time.Sleep(400 * time.Millisecond)
	if r := e.postOTLP(t, "shop", req); r.status != http.StatusOK {
		t.Fatalf("after the TTL: %d %q", r.status, r.body)
	}
	testutilCount(t, e, `sluice_gateway_auth_total{result="verified"}`, 4)
}
