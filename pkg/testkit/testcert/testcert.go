// Package testcert makes throwaway certificates for tests that need TLS: a
// self-signed certificate authority, a server certificate for the given hosts
// and a client certificate, all signed by that authority and written as PEM
// files into the test's temporary directory.
//
// It exists so that the TLS tests of kafkaclient, devbroker and the devbroker
// command verify real handshakes (chain, host name, client certificate)
// instead of switching verification off.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Set is one authority and the two certificates it signed, as files and as a
// server-side tls.Config.
type Set struct {
	CAFile         string // PEM certificate of the authority
	ServerCertFile string // PEM server certificate, valid for the hosts given to New
	ServerKeyFile  string // PEM private key of the server certificate
	ClientCertFile string // PEM client certificate (for mutual TLS)
	ClientKeyFile  string // PEM private key of the client certificate

	// Server presents the server certificate. It does not ask for client
	// certificates; set ClientAuth and ClientCAs (CAPool) to require them.
	Server *tls.Config
	// CAPool holds the authority, for verifying either side.
	CAPool *x509.CertPool
}

// New creates a Set whose server certificate is valid for hosts (DNS names or
// IP addresses). It fails the test on any error.
func New(t testing.TB, hosts ...string) Set {
	t.Helper()
	dir := t.TempDir()

	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "testcert CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("create CA certificate: %v", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("parse CA certificate: %v", err)
	}

	leaf := func(name string, usage x509.ExtKeyUsage, hosts []string) (certFile, keyFile string) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: serial(t),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("create %s certificate: %v", name, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatalf("marshal %s key: %v", name, err)
		}
		certFile = writePEM(t, dir, name+".crt", "CERTIFICATE", der)
		keyFile = writePEM(t, dir, name+".key", "PRIVATE KEY", keyDER)
		return certFile, keyFile
	}

	s := Set{CAFile: writePEM(t, dir, "ca.crt", "CERTIFICATE", caDER)}
	s.ServerCertFile, s.ServerKeyFile = leaf("server", x509.ExtKeyUsageServerAuth, hosts)
	s.ClientCertFile, s.ClientKeyFile = leaf("client", x509.ExtKeyUsageClientAuth, nil)

	serverCert, err := tls.LoadX509KeyPair(s.ServerCertFile, s.ServerKeyFile)
	if err != nil {
		t.Fatalf("load server key pair: %v", err)
	}
	s.CAPool = x509.NewCertPool()
	s.CAPool.AddCert(caCert)
	s.Server = &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}
	return s
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("serial number: %v", err)
	}
	return n
}

func writePEM(t testing.TB, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}
