package kafkaclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Defaults this package applies where kafka-go's own would hurt the pattern.
const (
	// DialTimeout bounds connecting, including the TLS and SASL handshakes.
	DialTimeout = 10 * time.Second
	// ReaderMaxWait is how long a fetch waits for new records. kafka-go's
	// 10 s default makes a consumer slow to notice records and to stop.
	ReaderMaxWait = 250 * time.Millisecond
	// WriterBatchTimeout is how long a writer waits to fill a batch.
	// kafka-go's 1 s default adds a second to every synchronous write.
	WriterBatchTimeout = 5 * time.Millisecond
	// WriterBatchBytes is the largest request a writer sends, and so the
	// largest record it accepts. kafka-go's 1 MiB default refuses, on the
	// client, a record the reader just received from a broker that allows
	// more, and a service that forwards records byte for byte (retry, dead
	// letter) would retry that hand-off forever. The broker's (or topic's)
	// max.message.bytes is the limit that counts.
	WriterBatchBytes = 16 << 20
)

// Dialer returns a kafka-go Dialer with the client id, TLS, SASL and Dial
// function of the configuration. Readers use it to open their connections.
func (c Config) Dialer() (*kafka.Dialer, error) {
	tlsCfg, mech, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{
		ClientID:      c.ClientID,
		Timeout:       DialTimeout,
		DualStack:     true,
		TLS:           tlsCfg,
		SASLMechanism: mech,
		DialFunc:      c.Dial,
	}, nil
}

// Transport returns a kafka-go Transport (the connection pool behind
// kafka.Client and kafka.Writer) with the configuration's settings.
//
// The caller owns it: call CloseIdleConnections when done, or its metadata
// goroutine and connections live on (kafka-go issue #1358). NewWriter
// returns a writer whose Close does this for you.
func (c Config) Transport() (*kafka.Transport, error) {
	tlsCfg, mech, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{
		Dial:        c.dial(),
		DialTimeout: DialTimeout,
		ClientID:    c.ClientID,
		TLS:         tlsCfg,
		SASL:        mech,
	}, nil
}

// NewReader returns a kafka-go Reader for rc with Brokers and Dialer taken
// from the configuration (whatever rc held there is replaced) and defaults
// suited to fetch -> process -> commit:
//   - MinBytes 1 and MaxWait ReaderMaxWait, so a record is handed over as
//     soon as it arrives;
//   - CommitInterval 0 (kafka-go's default, kept): CommitMessages commits
//     synchronously and returns the broker's answer;
//   - StartOffset FirstOffset: a group with no committed offset starts at
//     the oldest record, so nothing produced before the first start is lost.
//
// Give every CommitMessages a context with a deadline and stop fetching
// before Close: see the package documentation.
func (c Config) NewReader(rc kafka.ReaderConfig) (*kafka.Reader, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("kafka reader: %w", err)
	}
	d, err := c.Dialer()
	if err != nil {
		return nil, fmt.Errorf("kafka reader: %w", err)
	}
	rc.Brokers = append([]string(nil), c.Brokers...)
	rc.Dialer = d
	if rc.MinBytes == 0 {
		rc.MinBytes = 1
	}
	if rc.MaxBytes == 0 {
		rc.MaxBytes = 1e6 // kafka-go's default, set here because Validate needs it
	}
	if rc.MaxWait == 0 {
		rc.MaxWait = ReaderMaxWait
	}
	if rc.StartOffset == 0 {
		rc.StartOffset = kafka.FirstOffset
	}
	// kafka.NewReader panics on an invalid config; return an error instead.
	if err := rc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka reader for topic %q group %q: %w", rc.Topic, rc.GroupID, err)
	}
	return kafka.NewReader(rc), nil
}

// NewWriter returns a kafka-go Writer for topic ("" lets each message name
// its own topic) with:
//   - the Hash balancer: the same key always goes to the same partition, so
//     the records of one order stay in order;
//   - RequiredAcks RequireAll: a write succeeds once every in-sync replica
//     has it, so an acknowledged record survives a broker loss;
//   - BatchTimeout WriterBatchTimeout instead of kafka-go's 1 s;
//   - BatchBytes WriterBatchBytes instead of kafka-go's 1 MiB, so that the
//     broker's max.message.bytes decides which records are too large;
//   - AllowAutoTopicCreation false: a typo in a topic name is an error, not
//     a new topic.
//
// Close releases the writer's connections too.
func (c Config) NewWriter(topic string) (*kafka.Writer, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("kafka writer: %w", err)
	}
	d, err := c.Dialer()
	if err != nil {
		return nil, fmt.Errorf("kafka writer: %w", err)
	}
	// kafka.NewWriter is kept by kafka-go for compatibility, and it is the
	// only way to get a Writer whose Close also closes its Transport: a
	// Writer built as a literal never releases a Transport it was given
	// (kafka-go issues #599 and #1358), which leaks a goroutine and
	// connections per writer. Every field that matters is set below.
	w := kafka.NewWriter(kafka.WriterConfig{
		Brokers:      append([]string(nil), c.Brokers...),
		Topic:        topic,
		Dialer:       d,
		Balancer:     &kafka.Hash{},
		BatchTimeout: WriterBatchTimeout,
		BatchBytes:   WriterBatchBytes,
		RequiredAcks: int(kafka.RequireAll),
	})
	w.AllowAutoTopicCreation = false
	if t, ok := w.Transport.(*kafka.Transport); ok {
		// The compatibility constructor drops Dialer.DialFunc and leaves the
		// handshake timeout at kafka-go's 5 s: align both with Transport().
		t.DialTimeout = DialTimeout
		if c.Dial != nil {
			t.Dial = c.Dial
		}
	}
	return w, nil
}

// dial is the Dial function for a Transport.
func (c Config) dial() func(ctx context.Context, network, address string) (net.Conn, error) {
	if c.Dial != nil {
		return c.Dial
	}
	return (&net.Dialer{Timeout: DialTimeout}).DialContext
}

// security builds the TLS config and the SASL mechanism.
func (c Config) security() (*tls.Config, sasl.Mechanism, error) {
	tlsCfg, err := c.TLS.build()
	if err != nil {
		return nil, nil, err
	}
	mech, err := c.SASL.mechanism()
	if err != nil {
		return nil, nil, err
	}
	return tlsCfg, mech, nil
}

// build returns nil when TLS is off.
func (t TLSConfig) build() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented as local-only
	}
	if t.CAFile != "" {
		pemBytes, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: read CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s: no PEM certificate found: want a PEM bundle of CA certificates", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		if t.CertFile == "" || t.KeyFile == "" {
			return nil, fmt.Errorf("KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE: set both (mutual TLS) or neither")
		}
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE: load client key pair: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// mechanism returns nil when SASL is off.
func (s SASLConfig) mechanism() (sasl.Mechanism, error) {
	switch strings.ToLower(s.Mechanism) {
	case "":
		return nil, nil
	case MechanismPlain:
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case MechanismSCRAMSHA256:
		m, err := scram.Mechanism(scram.SHA256, s.Username, s.Password)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_SASL_MECHANISM scram-sha-256: %w", err)
		}
		return m, nil
	case MechanismSCRAMSHA512:
		m, err := scram.Mechanism(scram.SHA512, s.Username, s.Password)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_SASL_MECHANISM scram-sha-512: %w", err)
		}
		return m, nil
	default:
		return nil, fmt.Errorf("KAFKA_SASL_MECHANISM %q is not supported: want plain, scram-sha-256 or scram-sha-512", s.Mechanism)
	}
}
