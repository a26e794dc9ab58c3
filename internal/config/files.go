package config

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
)

// ReadSecret returns the secret held in the file at path (a Kubernetes
// secret mounted as a file): its content less one trailing newline. Errors
// are *Problem naming fileVar, the variable that gave the path; they carry
// the path, never the content. An empty file is an error.
func ReadSecret(fileVar, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// os errors carry the path, never the content.
		return "", &Problem{Var: fileVar, Err: fmt.Errorf("read secret: %w", err)}
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return "", &Problem{Var: fileVar, Err: fmt.Errorf("%s is empty", path)}
	}
	return string(b), nil
}

// ReadCertPool returns a pool of the PEM certificates in the file at path,
// for verifying servers. Errors are *Problem naming caVar.
func ReadCertPool(caVar, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, &Problem{Var: caVar, Err: fmt.Errorf("read CA file: %w", err)}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, &Problem{Var: caVar, Err: fmt.Errorf("no PEM certificate in %s", path)}
	}
	return pool, nil
}
