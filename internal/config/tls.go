package config

import (
	"crypto/tls"
	"fmt"
)

// TLS is how a client verifies the servers it connects to and, for mutual
// TLS, proves who it is: what the SLUICE_KAFKA_TLS_* and the
// SLUICE_ELASTICSEARCH_* CA settings say. The *Var fields are the full names
// of the variables that gave the files, which errors name.
type TLS struct {
	// CAFile is a PEM file of the CA certificates to verify servers with.
	// Empty: the system roots.
	CAFile string
	CAVar  string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// mutual TLS. Empty: no client certificate.
	CertFile, KeyFile string
	CertVar           string
	// ServerName is the name to verify server certificates against.
	// Empty: the host of the address dialled.
	ServerName string
	// InsecureSkipVerify turns verification off: the operator's explicit
	// choice, for testing.
	InsecureSkipVerify bool
}

// Config reads the files of t and returns its TLS configuration, TLS 1.2
// or later. The files are read on every call, so that a rotated
// certificate takes effect for the clients created afterwards. Errors are
// *Problem naming the variable of the file at fault; they carry its path,
// never its content.
func (t TLS) Config() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	if t.CAFile != "" {
		pool, err := ReadCertPool(t.CAVar, t.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, &Problem{Var: t.CertVar, Err: fmt.Errorf("load client certificate and key: %w", err)}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
