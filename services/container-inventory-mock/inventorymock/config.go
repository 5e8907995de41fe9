package inventorymock

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/gommon/bytes"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/telemetry"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// Config is the whole configuration of the mock. DefaultConfig gives the
// values used when a variable is not set; New fills zero fields the same way.
type Config struct {
	// HTTPAddr (HTTP_ADDR) is the listen address of every endpoint.
	HTTPAddr string
	// LogLevel (LOG_LEVEL: debug, info, warn, error) and LogFormat (LOG_FORMAT:
	// json or text) configure the logger main builds.
	LogLevel  slog.Level
	LogFormat string
	// FaultProfile (FAULT_PROFILE: a preset name, inline JSON or @file.json) is
	// the profile in force at start.
	FaultProfile faults.Profile
	// FaultMaxHang (FAULT_MAX_HANG) bounds every injected wait: a "timeout"
	// call is answered 504 after it if the client is still waiting, and latency
	// is cut to it. It keeps a forgotten profile from pinning goroutines.
	FaultMaxHang time.Duration
	// AdminToken (ADMIN_TOKEN), when set, is required as a bearer token on
	// /admin/*. AdminInsecure (ADMIN_INSECURE=true) allows an admin API without
	// token on an address reachable beyond loopback.
	AdminToken    string
	AdminInsecure bool
	// CallLogSize (CALL_LOG_SIZE) is how many recent calls /admin/calls keeps.
	CallLogSize int
	// BodyLimit (HTTP_BODY_LIMIT) is the largest accepted request body.
	BodyLimit string
	// ShutdownTimeout (SHUTDOWN_TIMEOUT) bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// Telemetry is the tracing (the OTEL_* variables): each inventory
	// call gets a server span that continues the caller's trace. Off
	// without an endpoint.
	Telemetry telemetry.Config
}

// DefaultConfig returns the configuration used when no variable is set.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:        ":8081",
		LogLevel:        slog.LevelInfo,
		LogFormat:       "json",
		FaultMaxHang:    30 * time.Second,
		CallLogSize:     1000,
		BodyLimit:       "64K",
		ShutdownTimeout: 10 * time.Second,
		Telemetry:       telemetry.DefaultConfig(),
	}
}

// withDefaults fills zero fields from DefaultConfig, so that a Config built in
// code (the local demo) needs only the fields it cares about.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.HTTPAddr == "" {
		c.HTTPAddr = d.HTTPAddr
	}
	if c.LogFormat == "" {
		c.LogFormat = d.LogFormat
	}
	if c.FaultMaxHang == 0 {
		c.FaultMaxHang = d.FaultMaxHang
	}
	if c.CallLogSize == 0 {
		c.CallLogSize = d.CallLogSize
	}
	if c.BodyLimit == "" {
		c.BodyLimit = d.BodyLimit
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	return c
}

// ConfigFromEnv reads the configuration from the environment through getenv
// (os.Getenv in production). An empty variable takes its default. Every bad
// value is reported, each naming its variable and the accepted form.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	r := envReader{getenv: getenv}
	r.str("HTTP_ADDR", &cfg.HTTPAddr)
	r.level("LOG_LEVEL", &cfg.LogLevel)
	r.oneOf("LOG_FORMAT", &cfg.LogFormat, "json", "text")
	if spec := getenv("FAULT_PROFILE"); spec != "" {
		p, err := faults.Load(spec, os.ReadFile)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("FAULT_PROFILE: %w", err))
		}
		cfg.FaultProfile = p
	}
	r.duration("FAULT_MAX_HANG", &cfg.FaultMaxHang)
	r.str("ADMIN_TOKEN", &cfg.AdminToken)
	r.boolean("ADMIN_INSECURE", &cfg.AdminInsecure)
	r.integer("CALL_LOG_SIZE", &cfg.CallLogSize)
	r.str("HTTP_BODY_LIMIT", &cfg.BodyLimit)
	r.duration("SHUTDOWN_TIMEOUT", &cfg.ShutdownTimeout)
	tel, err := telemetry.ConfigFromEnv(getenv)
	if err != nil {
		r.errs = append(r.errs, err)
	}
	cfg.Telemetry = tel
	if len(r.errs) > 0 {
		return Config{}, fmt.Errorf("configuration: %w", errors.Join(r.errs...))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks the values that make sense only together, such as an admin
// API reachable beyond loopback without a token.
func (c Config) Validate() error {
	var errs []error
	host, _, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR %q: want host:port such as :8081 or 127.0.0.1:8081", c.HTTPAddr))
	} else if c.AdminToken == "" && !c.AdminInsecure && !isLoopback(host) {
		errs = append(errs, fmt.Errorf("HTTP_ADDR %q: the admin API would be reachable beyond loopback without a token: "+
			"set ADMIN_TOKEN, bind to loopback (HTTP_ADDR=127.0.0.1:8081), or set ADMIN_INSECURE=true", c.HTTPAddr))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT %q: want json or text", c.LogFormat))
	}
	if err := c.FaultProfile.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("FAULT_PROFILE: %w", err))
	}
	if c.FaultMaxHang <= 0 {
		errs = append(errs, fmt.Errorf("FAULT_MAX_HANG %s: want a positive duration such as 30s", c.FaultMaxHang))
	}
	if c.CallLogSize < 1 {
		errs = append(errs, fmt.Errorf("CALL_LOG_SIZE %d: want a whole number of 1 or more", c.CallLogSize))
	}
	if n, err := bytes.Parse(c.BodyLimit); err != nil || n <= 0 {
		errs = append(errs, fmt.Errorf("HTTP_BODY_LIMIT %q: want a size such as 64K or 1M", c.BodyLimit))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("SHUTDOWN_TIMEOUT %s: want a positive duration such as 10s", c.ShutdownTimeout))
	}
	if len(errs) > 0 {
		return fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return nil
}

// isLoopback reports whether host only accepts connections from this machine.
// An empty host or 0.0.0.0 listens on every interface; other names are not
// resolved and count as reachable.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LogValue logs the configuration with the admin token masked.
func (c Config) LogValue() slog.Value {
	token := ""
	if c.AdminToken != "" {
		token = "(set)"
	}
	profile, err := json.Marshal(c.FaultProfile)
	if err != nil {
		profile = []byte(err.Error())
	}
	return slog.GroupValue(
		slog.String("httpAddr", c.HTTPAddr),
		slog.String("logLevel", c.LogLevel.String()),
		slog.String("logFormat", c.LogFormat),
		slog.String("faultProfile", string(profile)),
		slog.Duration("faultMaxHang", c.FaultMaxHang),
		slog.String("adminToken", token),
		slog.Bool("adminInsecure", c.AdminInsecure),
		slog.Int("callLogSize", c.CallLogSize),
		slog.String("bodyLimit", c.BodyLimit),
		slog.Duration("shutdownTimeout", c.ShutdownTimeout),
	)
}

// envReader reads typed variables, collecting one error per bad variable.
type envReader struct {
	getenv func(string) string
	errs   []error
}

func (r *envReader) bad(name, value, want string) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: want %s", name, value, want))
}

func (r *envReader) str(name string, dst *string) {
	if v := r.getenv(name); v != "" {
		*dst = v
	}
}

func (r *envReader) oneOf(name string, dst *string, allowed ...string) {
	v := r.getenv(name)
	if v == "" {
		return
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			*dst = a
			return
		}
	}
	r.bad(name, v, "one of "+strings.Join(allowed, ", "))
}

func (r *envReader) level(name string, dst *slog.Level) {
	v := r.getenv(name)
	if v == "" {
		return
	}
	if err := dst.UnmarshalText([]byte(v)); err != nil {
		r.bad(name, v, "debug, info, warn or error")
	}
}

func (r *envReader) duration(name string, dst *time.Duration) {
	v := r.getenv(name)
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.bad(name, v, "a positive Go duration such as 500ms, 30s or 2m")
		return
	}
	*dst = d
}

func (r *envReader) boolean(name string, dst *bool) {
	v := r.getenv(name)
	if v == "" {
		return
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.bad(name, v, "true or false")
		return
	}
	*dst = b
}

func (r *envReader) integer(name string, dst *int) {
	v := r.getenv(name)
	if v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		r.bad(name, v, "a whole number of 1 or more")
		return
	}
	*dst = n
}

// Vars lists the variables ConfigFromEnv reads, with their defaults, for
// --help.
func Vars() ([]envconfig.Var, error) {
	d := DefaultConfig()
	v := func(name, def string) envconfig.Var { return envconfig.Var{Name: name, Default: def, HasDefault: true} }
	otel, err := envconfig.Vars[telemetry.Config]()
	if err != nil {
		return nil, err
	}
	return append([]envconfig.Var{
		v("HTTP_ADDR", d.HTTPAddr),
		v("LOG_LEVEL", strings.ToLower(d.LogLevel.String())),
		v("LOG_FORMAT", d.LogFormat),
		v("FAULT_PROFILE", ""), // no faults: every call succeeds
		v("FAULT_MAX_HANG", d.FaultMaxHang.String()),
		v("ADMIN_TOKEN", ""),
		v("ADMIN_INSECURE", strconv.FormatBool(d.AdminInsecure)),
		v("CALL_LOG_SIZE", strconv.Itoa(d.CallLogSize)),
		v("HTTP_BODY_LIMIT", d.BodyLimit),
		v("SHUTDOWN_TIMEOUT", d.ShutdownTimeout.String()),
	}, otel...), nil
}
