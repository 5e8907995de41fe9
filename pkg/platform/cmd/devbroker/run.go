package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// errUsage marks a command-line mistake: main exits with status 2.
var errUsage = errors.New("usage error")

const usageHeader = `devbroker: an embedded Kafka-protocol broker for development and tests.

It is one in-process broker (github.com/twmb/franz-go/pkg/kfake) with no
replication: use it for local runs, the demo and CI. Production uses a real
Kafka cluster.

Usage:
  devbroker [flags]

Once it accepts connections it prints the address it advertises on standard
output (one line); logs go to standard error. SIGINT or SIGTERM stops it
cleanly (with --data-dir, after saving its state).

Flags:
`

// options are the parsed flags.
type options struct {
	listen, advertise  string
	topics             topicsFlag
	autoCreate         bool
	defaultPartitions  int
	dataDir            string
	tlsCert, tlsKey    string
	saslMechanism      string
	saslUser, saslPass string
	logLevel           slog.Level
	logFormat          string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, opts.logLevel, opts.logFormat)
	cfg := devbroker.Config{
		Listen:            opts.listen,
		Advertise:         opts.advertise,
		Topics:            opts.topics.topics,
		AutoCreate:        opts.autoCreate,
		DefaultPartitions: opts.defaultPartitions,
		DataDir:           opts.dataDir,
		Log:               log,
	}
	if opts.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(opts.tlsCert, opts.tlsKey)
		if err != nil {
			return fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", opts.tlsCert, opts.tlsKey, err)
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if opts.saslUser != "" {
		cfg.SASL = []devbroker.SASLUser{{Mechanism: opts.saslMechanism, User: opts.saslUser, Password: opts.saslPass}}
	}

	b, err := devbroker.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, b.Addr()); err != nil {
		b.Close()
		return fmt.Errorf("print the advertised address: %w", err)
	}
	<-ctx.Done()
	log.Info("shutting down", "cause", context.Cause(ctx))
	return b.Close()
}

// parseFlags parses and checks the command line. On a mistake it prints the
// problem and the usage, and returns an error wrapping errUsage.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	opts := options{topics: topicsFlag{topics: kafkaclient.DefaultTopics()}}
	fs := flag.NewFlagSet("devbroker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHeader)
		fs.PrintDefaults()
	}
	fs.StringVar(&opts.listen, "listen", "127.0.0.1:9092", "`host:port` to bind (port 0 picks a free port; 0.0.0.0:9092 in a container)")
	fs.StringVar(&opts.advertise, "advertise", "", "`host:port` clients are told to connect to, e.g. localhost:19092 behind a published port\nor devbroker:9092 on a compose network (default: the bound address)")
	fs.Var(&opts.topics, "topics", "topics to create, `name:partitions,...` (\"\" for none)")
	fs.BoolVar(&opts.autoCreate, "auto-create", false, "let clients create unknown topics by naming them")
	fs.IntVar(&opts.defaultPartitions, "default-partitions", 1, "partitions of auto-created topics")
	fs.StringVar(&opts.dataDir, "data-dir", "", "`directory` that keeps topics, records and offsets across restarts (default: memory only)")
	fs.StringVar(&opts.tlsCert, "tls-cert", "", "PEM server certificate `file`: accept TLS connections only (with --tls-key)")
	fs.StringVar(&opts.tlsKey, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.StringVar(&opts.saslMechanism, "sasl-mechanism", devbroker.MechanismPlain, "SASL `mechanism` of --sasl-user: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&opts.saslUser, "sasl-user", "", "require SASL and accept this `user` (with --sasl-password)")
	fs.StringVar(&opts.saslPass, "sasl-password", "", "`password` of --sasl-user")
	fs.TextVar(&opts.logLevel, "log-level", slog.LevelInfo, "`level`: debug, info, warn or error")
	fs.StringVar(&opts.logFormat, "log-format", "text", "`format` of the logs: text or json")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return opts, err
		}
		return opts, fmt.Errorf("%w: %w", errUsage, err) // flag printed the error and the usage
	}
	var problems []error
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Errorf("unexpected arguments %q: devbroker takes flags only", fs.Args()))
	}
	if (opts.tlsCert == "") != (opts.tlsKey == "") {
		problems = append(problems, errors.New("--tls-cert and --tls-key go together"))
	}
	if (opts.saslUser == "") != (opts.saslPass == "") {
		problems = append(problems, errors.New("--sasl-user and --sasl-password go together"))
	}
	switch strings.ToUpper(opts.saslMechanism) {
	case devbroker.MechanismPlain, devbroker.MechanismSCRAMSHA256, devbroker.MechanismSCRAMSHA512:
	default:
		problems = append(problems, fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", opts.saslMechanism))
	}
	if opts.defaultPartitions < 1 {
		problems = append(problems, fmt.Errorf("--default-partitions %d: want at least 1", opts.defaultPartitions))
	}
	if opts.logFormat != "text" && opts.logFormat != "json" {
		problems = append(problems, fmt.Errorf("--log-format %q: want text or json", opts.logFormat))
	}
	if len(problems) > 0 {
		err := errors.Join(problems...)
		fmt.Fprintln(stderr, "devbroker:", strings.ReplaceAll(err.Error(), "\n", "\ndevbroker: "))
		fs.Usage()
		return opts, fmt.Errorf("%w: %w", errUsage, err)
	}
	return opts, nil
}

// newLogger builds the logger; parseFlags checked the format.
func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	hopts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}

// topicsFlag is the --topics value: devbroker.ParseTopics on set, the
// canonical list (sorted) on print.
type topicsFlag struct{ topics map[string]int }

func (f *topicsFlag) Set(s string) error {
	t, err := devbroker.ParseTopics(s)
	if err != nil {
		return err
	}
	f.topics = t
	return nil
}

func (f *topicsFlag) String() string {
	if f == nil {
		return ""
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(f.topics)) {
		parts = append(parts, fmt.Sprintf("%s:%d", name, f.topics[name]))
	}
	return strings.Join(parts, ",")
}
