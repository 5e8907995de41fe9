package kafkaclient_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/testcert"
)

// handshake runs a TLS handshake between the client config and a server on
// loopback, and returns the client's error.
func handshake(t *testing.T, client, server *tls.Config) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if conn.(*tls.Conn).Handshake() == nil {
			_, _ = conn.Write([]byte("k")) // proof that the server accepted the client
		}
	}()
	client = client.Clone()
	client.ServerName = "localhost" // what kafka-go sets from the broker's host
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), client)
	if err != nil {
		return err
	}
	defer conn.Close()
	// With TLS 1.3 the client learns that the server rejected its
	// certificate only on the first read.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	return err
}

func TestTLSConfigVerifiesTheBroker(t *testing.T) {
	certs := testcert.New(t, "localhost", "127.0.0.1")
	mutual := certs.Server.Clone()
	mutual.ClientAuth = tls.RequireAndVerifyClientCert
	mutual.ClientCAs = certs.CAPool

	tests := []struct {
		name    string
		tls     kafkaclient.TLSConfig
		server  *tls.Config
		wantErr string // substring; "" means the handshake succeeds
	}{
		{
			name:   "private CA file trusts the broker",
			tls:    kafkaclient.TLSConfig{Enabled: true, CAFile: certs.CAFile},
			server: certs.Server,
		},
		{
			name:    "system roots do not trust a private CA",
			tls:     kafkaclient.TLSConfig{Enabled: true},
			server:  certs.Server,
			wantErr: "certificate signed by unknown authority",
		},
		{
			name:   "skip verify accepts any certificate",
			tls:    kafkaclient.TLSConfig{Enabled: true, InsecureSkipVerify: true},
			server: certs.Server,
		},
		{
			name:   "client certificate satisfies mutual TLS",
			tls:    kafkaclient.TLSConfig{Enabled: true, CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile},
			server: mutual,
		},
		{
			name:    "no client certificate fails mutual TLS",
			tls:     kafkaclient.TLSConfig{Enabled: true, CAFile: certs.CAFile},
			server:  mutual,
			wantErr: "certificate required",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := kafkaclient.Config{Brokers: []string{"localhost:9093"}, TLS: tt.tls}
			d, err := cfg.Dialer()
			if err != nil {
				t.Fatalf("Dialer() = %v", err)
			}
			tr, err := cfg.Transport()
			if err != nil {
				t.Fatalf("Transport() = %v", err)
			}
			if d.TLS == nil || tr.TLS == nil {
				t.Fatalf("TLS enabled but Dialer.TLS = %v, Transport.TLS = %v", d.TLS, tr.TLS)
			}
			if d.TLS.MinVersion < tls.VersionTLS12 {
				t.Errorf("MinVersion = %x, want at least TLS 1.2", d.TLS.MinVersion)
			}
			err = handshake(t, d.TLS, tt.server)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("handshake: %v, want success", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("handshake: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestTLSFileProblemsAreNamed(t *testing.T) {
	certs := testcert.New(t, "localhost")
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tls  kafkaclient.TLSConfig
		want string
	}{
		{"missing CA file", kafkaclient.TLSConfig{Enabled: true, CAFile: filepath.Join(t.TempDir(), "nope.pem")}, "KAFKA_TLS_CA_FILE: read CA bundle"},
		{"CA file without a certificate", kafkaclient.TLSConfig{Enabled: true, CAFile: notPEM}, "KAFKA_TLS_CA_FILE " + notPEM + ": no PEM certificate"},
		{"key that is not a key", kafkaclient.TLSConfig{Enabled: true, CertFile: certs.ClientCertFile, KeyFile: notPEM}, "KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE: load client key pair"},
		{"key of another certificate", kafkaclient.TLSConfig{Enabled: true, CertFile: certs.ClientCertFile, KeyFile: certs.ServerKeyFile}, "KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE: load client key pair"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := kafkaclient.Config{Brokers: []string{"localhost:9093"}, TLS: tt.tls}
			_, dErr := cfg.Dialer()
			_, tErr := cfg.Transport()
			_, wErr := cfg.NewWriter("orders")
			for name, err := range map[string]error{"Dialer": dErr, "Transport": tErr, "NewWriter": wErr} {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s() error = %v, want it to contain %q", name, err, tt.want)
				}
			}
		})
	}
}

func TestTLSOffMeansPlaintext(t *testing.T) {
	cfg := kafkaclient.Config{Brokers: []string{"localhost:9092"}}
	d, err := cfg.Dialer()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cfg.Transport()
	if err != nil {
		t.Fatal(err)
	}
	if d.TLS != nil || tr.TLS != nil {
		t.Errorf("TLS off but Dialer.TLS = %v, Transport.TLS = %v", d.TLS, tr.TLS)
	}
}

func TestSASLMechanismSelection(t *testing.T) {
	tests := []struct {
		mechanism string
		want      string // the mechanism's protocol name; "" means no SASL
	}{
		{"", ""},
		{"plain", "PLAIN"},
		{"PLAIN", "PLAIN"},
		{"scram-sha-256", "SCRAM-SHA-256"},
		{"SCRAM-SHA-256", "SCRAM-SHA-256"},
		{"scram-sha-512", "SCRAM-SHA-512"},
	}
	for _, tt := range tests {
		t.Run("mechanism "+tt.mechanism, func(t *testing.T) {
			cfg := kafkaclient.Config{Brokers: []string{"localhost:9092"}, SASL: kafkaclient.SASLConfig{Mechanism: tt.mechanism}}
			if tt.mechanism != "" {
				cfg.SASL.Username, cfg.SASL.Password = "svc", "secret"
			}
			d, err := cfg.Dialer()
			if err != nil {
				t.Fatalf("Dialer() = %v", err)
			}
			tr, err := cfg.Transport()
			if err != nil {
				t.Fatalf("Transport() = %v", err)
			}
			for name, m := range map[string]interface{ Name() string }{"Dialer": d.SASLMechanism, "Transport": tr.SASL} {
				got := ""
				if m != nil {
					got = m.Name()
				}
				if got != tt.want {
					t.Errorf("%s mechanism = %q, want %q", name, got, tt.want)
				}
			}
		})
	}
}
