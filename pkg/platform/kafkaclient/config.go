package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
)

// Config is the one configuration every Kafka client of the suite is built
// from. The struct tags are for github.com/caarlos0/env/v11, which services
// use in their run function; this package never reads the environment.
type Config struct {
	// Brokers are the bootstrap brokers, host:port each.
	Brokers []string `env:"KAFKA_BROKERS" envSeparator:"," envDefault:"localhost:9092"`
	// ClientID names this client in the brokers' logs and quotas.
	ClientID string `env:"KAFKA_CLIENT_ID"`
	// TLS encrypts connections (and optionally authenticates the client).
	TLS TLSConfig
	// SASL authenticates the client with a user name and password.
	SASL SASLConfig
	// Dial, when set, opens every connection instead of a net.Dialer: for
	// example a test that maps the address a broker advertises to the port a
	// container published. It is not configuration, so it has no env tag.
	Dial func(ctx context.Context, network, address string) (net.Conn, error) `env:"-"`
}

// TLSConfig switches TLS on and names the PEM files it uses.
type TLSConfig struct {
	// Enabled turns TLS on. The system roots verify the brokers unless
	// CAFile is set.
	Enabled bool `env:"KAFKA_TLS"`
	// CAFile is a PEM bundle of the authorities that sign the brokers'
	// certificates (private CAs).
	CAFile string `env:"KAFKA_TLS_CA_FILE"`
	// CertFile and KeyFile are the client's certificate and key, for
	// brokers that require mutual TLS. Set both or neither.
	CertFile string `env:"KAFKA_TLS_CERT_FILE"`
	KeyFile  string `env:"KAFKA_TLS_KEY_FILE"`
	// InsecureSkipVerify accepts any broker certificate. Only for local
	// experiments: it defeats the point of TLS.
	InsecureSkipVerify bool `env:"KAFKA_TLS_INSECURE_SKIP_VERIFY"`
}

// SASL mechanisms accepted in SASLConfig.Mechanism (case does not matter).
const (
	MechanismPlain       = "plain"
	MechanismSCRAMSHA256 = "scram-sha-256"
	MechanismSCRAMSHA512 = "scram-sha-512"
)

// SASLConfig selects a SASL mechanism and its credentials. An empty
// Mechanism means no SASL.
type SASLConfig struct {
	Mechanism string `env:"KAFKA_SASL_MECHANISM"`
	Username  string `env:"KAFKA_SASL_USERNAME"`
	// Password is never printed: String and LogValue mask it.
	Password string `env:"KAFKA_SASL_PASSWORD"`
}

// DefaultTopics returns the contract's topics with their partition counts,
// for EnsureTopics in the demo, tests and compose files.
func DefaultTopics() map[string]int {
	return map[string]int{
		"orders":            6,
		"containers":        6,
		"order-retries":     6,
		"order-dead-letter": 3,
	}
}

// Validate reports every problem of the configuration at once, each naming
// the environment variable and the form it accepts. With TLS on it also
// loads the CA and key files, so that a missing or malformed file stops a
// service at start rather than at its first connection.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS is empty: want a comma-separated list of host:port"))
	}
	for _, b := range c.Brokers {
		if err := checkHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("KAFKA_BROKERS entry %q: %w: want host:port, e.g. localhost:9092", b, err))
		}
	}
	errs = append(errs, c.TLS.validate()...)
	errs = append(errs, c.SASL.validate()...)
	if len(errs) == 0 {
		if _, _, err := c.security(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (t TLSConfig) validate() []error {
	var errs []error
	if !t.Enabled {
		// Files without KAFKA_TLS=true would be silently ignored, which is
		// how a "secured" client ends up talking plaintext.
		for _, f := range []struct{ name, value string }{
			{"KAFKA_TLS_CA_FILE", t.CAFile},
			{"KAFKA_TLS_CERT_FILE", t.CertFile},
			{"KAFKA_TLS_KEY_FILE", t.KeyFile},
		} {
			if f.value != "" {
				errs = append(errs, fmt.Errorf("%s is set but KAFKA_TLS is not true: set KAFKA_TLS=true or unset %s", f.name, f.name))
			}
		}
		if t.InsecureSkipVerify {
			errs = append(errs, errors.New("KAFKA_TLS_INSECURE_SKIP_VERIFY is set but KAFKA_TLS is not true"))
		}
		return errs
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE: set both (mutual TLS) or neither"))
	}
	return errs
}

func (s SASLConfig) validate() []error {
	var errs []error
	switch strings.ToLower(s.Mechanism) {
	case "":
		if s.Username != "" || s.Password != "" {
			errs = append(errs, errors.New("KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set but KAFKA_SASL_MECHANISM is empty: want plain, scram-sha-256 or scram-sha-512"))
		}
		return errs
	case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
	default:
		errs = append(errs, fmt.Errorf("KAFKA_SASL_MECHANISM %q is not supported: want plain, scram-sha-256 or scram-sha-512 (or empty for no SASL)", s.Mechanism))
	}
	if s.Username == "" {
		errs = append(errs, errors.New("KAFKA_SASL_USERNAME is empty: SASL needs a user name"))
	}
	if s.Password == "" {
		errs = append(errs, errors.New("KAFKA_SASL_PASSWORD is empty: SASL needs a password"))
	}
	return errs
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("not host:port")
	}
	if host == "" {
		return errors.New("empty host")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number in 1-65535", port)
	}
	return nil
}

// String describes the configuration with the password masked, so that a
// config printed with %v or %+v never leaks it.
func (c Config) String() string {
	dial := "default"
	if c.Dial != nil {
		dial = "custom"
	}
	return fmt.Sprintf("brokers=%s client_id=%q tls={%s} sasl={%s} dial=%s",
		strings.Join(c.Brokers, ","), c.ClientID, c.TLS, c.SASL, dial)
}

// LogValue makes slog print the configuration with the password masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("brokers", c.Brokers),
		slog.String("client_id", c.ClientID),
		slog.Any("tls", c.TLS),
		slog.Any("sasl", c.SASL),
		slog.Bool("custom_dial", c.Dial != nil),
	)
}

// String describes the TLS settings.
func (t TLSConfig) String() string {
	return fmt.Sprintf("enabled=%t ca_file=%q cert_file=%q key_file=%q insecure_skip_verify=%t",
		t.Enabled, t.CAFile, t.CertFile, t.KeyFile, t.InsecureSkipVerify)
}

// LogValue makes slog print the TLS settings as a group.
func (t TLSConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("enabled", t.Enabled),
		slog.String("ca_file", t.CAFile),
		slog.String("cert_file", t.CertFile),
		slog.String("key_file", t.KeyFile),
		slog.Bool("insecure_skip_verify", t.InsecureSkipVerify),
	)
}

// String describes the SASL settings with the password masked.
func (s SASLConfig) String() string {
	return fmt.Sprintf("mechanism=%q username=%q password=%s", s.Mechanism, s.Username, mask(s.Password))
}

// LogValue makes slog print the SASL settings with the password masked.
func (s SASLConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("mechanism", s.Mechanism),
		slog.String("username", s.Username),
		slog.String("password", mask(s.Password)),
	)
}

// GoString masks the password for %#v too.
func (s SASLConfig) GoString() string {
	password := `""`
	if s.Password != "" {
		password = `"***"`
	}
	return fmt.Sprintf("kafkaclient.SASLConfig{Mechanism:%q, Username:%q, Password:%s}", s.Mechanism, s.Username, password)
}

// mask says whether a secret is set without revealing it or its length.
func mask(secret string) string {
	if secret == "" {
		return `""`
	}
	return "***"
}
