package dlq

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// Defaults of the global flags: the contract's names.
const (
	DefaultBrokers = "localhost:9092"
	DefaultTopic   = "order-dead-letter"
	DefaultRetry   = "order-retries"
	DefaultTimeout = 10 * time.Second
)

// globals are the flags every command shares.
type globals struct {
	brokers          []string
	clientID         string
	topic            string
	retryTopic       string
	resolutionsTopic string
	group            string
	tls              kafkaclient.TLSConfig
	sasl             kafkaclient.SASLConfig
	output           string
	noColor          bool
	timeout          time.Duration
	dialectName      string
	dialect          deadletter.Dialect
}

// app is one invocation: the environment and the parsed global flags.
type app struct {
	env Env
	g   globals
}

// envFlags maps global flags to the environment variables they mirror. A
// flag given on the command line wins over the variable.
var envFlags = []struct{ flag, env string }{
	{"brokers", "KAFKA_BROKERS"},
	{"client-id", "KAFKA_CLIENT_ID"},
	{"topic", "DLQ_TOPIC"},
	{"retry-topic", "RETRY_TOPIC"},
	{"resolutions-topic", "DLQ_RESOLUTIONS_TOPIC"},
	{"group", "DLQ_REDRIVE_GROUP"},
	{"tls", "KAFKA_TLS"},
	{"tls-ca-file", "KAFKA_TLS_CA_FILE"},
	{"tls-cert-file", "KAFKA_TLS_CERT_FILE"},
	{"tls-key-file", "KAFKA_TLS_KEY_FILE"},
	{"tls-insecure-skip-verify", "KAFKA_TLS_INSECURE_SKIP_VERIFY"},
	{"sasl-mechanism", "KAFKA_SASL_MECHANISM"},
	{"sasl-username", "KAFKA_SASL_USERNAME"},
	{"sasl-password", "KAFKA_SASL_PASSWORD"},
	{"dialect", "DLQ_DIALECT"},
}

const longHelp = `dlq inspects, filters, redrives and resolves the records of the dead-letter
topic (order-dead-letter): by hand, or automatically once the backend is
healthy again (dlq watch).

Reading never changes anything: list, show, stats and export read the topic
by offsets and never join a consumer group. What was dealt with is recorded
in the resolution log (<topic>.resolutions) and the consumer group
dlq-redrive; --status pending|resolved|all reads that record.

Every global flag mirrors an environment variable of the suite's contract
(flag wins). NO_COLOR (any value) turns colors off like --no-color.
OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_* variables) turns tracing
on: each redriven record gets a span linked to its dead letter's.

Exit codes:
  0  done
  1  error (broker unreachable, topic missing, write failed, interrupted)
  2  usage (unknown flag, bad value, confirmation needed: pass --yes)
  3  nothing matched the filters`

// NewCommand returns the dlq command with its subcommands.
func NewCommand(env Env) *cobra.Command {
	a := &app{env: env}
	root := &cobra.Command{
		Use:           "dlq",
		Short:         "Inspect, redrive and resolve the dead letters of the reefer order pipeline",
		Long:          longHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					msg += "; did you mean " + strings.Join(s, " or ") + "?"
				}
				return usageError{errors.New(msg)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("no command given")
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.applyEnv(cmd.Root().PersistentFlags())
		},
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	pf := root.PersistentFlags()
	pf.StringSliceVar(&a.g.brokers, "brokers", []string{DefaultBrokers}, "Kafka bootstrap brokers, host:port, comma-separated (env KAFKA_BROKERS)")
	pf.StringVar(&a.g.clientID, "client-id", "dlq", "client id shown in the brokers' logs (env KAFKA_CLIENT_ID)")
	pf.StringVar(&a.g.topic, "topic", DefaultTopic, "dead-letter topic (env DLQ_TOPIC)")
	pf.StringVar(&a.g.retryTopic, "retry-topic", DefaultRetry, "retry topic that redrive --to retry publishes to (env RETRY_TOPIC)")
	pf.StringVar(&a.g.resolutionsTopic, "resolutions-topic", "", "resolution log; default <topic>"+resolution.Suffix+" (env DLQ_RESOLUTIONS_TOPIC)")
	pf.StringVar(&a.g.group, "group", resolution.DefaultGroup, "consumer group tracking the redrive progress (env DLQ_REDRIVE_GROUP)")
	pf.BoolVar(&a.g.tls.Enabled, "tls", false, "connect with TLS (env KAFKA_TLS)")
	pf.StringVar(&a.g.tls.CAFile, "tls-ca-file", "", "PEM bundle of the CAs that sign the brokers' certificates (env KAFKA_TLS_CA_FILE)")
	pf.StringVar(&a.g.tls.CertFile, "tls-cert-file", "", "client certificate for mutual TLS (env KAFKA_TLS_CERT_FILE)")
	pf.StringVar(&a.g.tls.KeyFile, "tls-key-file", "", "client key for mutual TLS (env KAFKA_TLS_KEY_FILE)")
	pf.BoolVar(&a.g.tls.InsecureSkipVerify, "tls-insecure-skip-verify", false, "accept any broker certificate; local experiments only (env KAFKA_TLS_INSECURE_SKIP_VERIFY)")
	pf.StringVar(&a.g.sasl.Mechanism, "sasl-mechanism", "", "SASL mechanism: plain, scram-sha-256 or scram-sha-512 (env KAFKA_SASL_MECHANISM)")
	pf.StringVar(&a.g.sasl.Username, "sasl-username", "", "SASL user name (env KAFKA_SASL_USERNAME)")
	pf.StringVar(&a.g.sasl.Password, "sasl-password", "", "SASL password; prefer the environment, a flag shows in ps (env KAFKA_SASL_PASSWORD)")
	pf.StringVarP(&a.g.output, "output", "o", string(render.Table), "output format: table, json or jsonl")
	pf.BoolVar(&a.g.noColor, "no-color", false, "no colors in tables (also: NO_COLOR set to any value)")
	pf.DurationVar(&a.g.timeout, "timeout", DefaultTimeout, "how long to try to reach the brokers before giving up")
	pf.StringVar(&a.g.dialectName, "dialect", string(deadletter.Auto), "read every record as this dialect: auto (detect per record), "+dialectNames()+" (env DLQ_DIALECT)")
	_ = root.RegisterFlagCompletionFunc("output", fixedCompletions(string(render.Table), string(render.JSON), string(render.JSONL)))
	_ = root.RegisterFlagCompletionFunc("sasl-mechanism", fixedCompletions("plain", "scram-sha-256", "scram-sha-512"))
	_ = root.RegisterFlagCompletionFunc("dialect", fixedCompletions(append([]string{string(deadletter.Auto)}, dialectList()...)...))
	root.Version = version()
	root.SetVersionTemplate("dlq {{.Version}}\n")

	root.AddCommand(
		a.listCommand(),
		a.showCommand(),
		a.statsCommand(),
		a.exportCommand(),
		a.redriveCommand(),
		a.editCommand(),
		a.watchCommand(),
		a.resolveCommand(),
		a.uiCommand(),
	)
	return root
}

// applyEnv fills every global flag not given on the command line from its
// environment variable, and checks the values.
func (a *app) applyEnv(fs *pflag.FlagSet) error {
	for _, m := range envFlags {
		f := fs.Lookup(m.flag)
		v := a.env.getenv(m.env)
		if f == nil || f.Changed || v == "" {
			continue
		}
		if m.flag == "brokers" {
			// A StringSlice flag appends on Set after the first; the
			// variable replaces the default instead.
			a.g.brokers = splitList(v)
			continue
		}
		if err := f.Value.Set(v); err != nil {
			want := map[string]string{"bool": "true or false", "duration": "a duration such as 10s"}[f.Value.Type()]
			if want == "" {
				return usagef("%s=%q: %v", m.env, v, err)
			}
			return usagef("%s=%q: want %s", m.env, v, want)
		}
	}
	if a.env.getenv("NO_COLOR") != "" {
		a.g.noColor = true
	}
	if _, err := render.ParseFormat(a.g.output); err != nil {
		return usagef("-o: %v", err)
	}
	if a.g.topic == "" {
		return usagef("--topic (DLQ_TOPIC) is empty: want the dead-letter topic's name")
	}
	if a.g.group == "" {
		return usagef("--group (DLQ_REDRIVE_GROUP) is empty: want a consumer group name")
	}
	if a.g.resolutionsTopic == "" {
		a.g.resolutionsTopic = resolution.TopicFor(a.g.topic)
	}
	d, err := deadletter.ParseDialect(a.g.dialectName)
	if err != nil {
		return usagef("--dialect: %v", err)
	}
	a.g.dialect = d
	if a.g.timeout <= 0 {
		return usagef("--timeout %s: want a positive duration", a.g.timeout)
	}
	if err := a.kafkaConfig().Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// dialectList names the dialects, for help and completion.
func dialectList() []string {
	out := make([]string, len(deadletter.Dialects))
	for i, d := range deadletter.Dialects {
		out[i] = string(d)
	}
	return out
}

func dialectNames() string { return strings.Join(dialectList(), ", ") }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// kafkaConfig is the kafkaclient configuration of the global flags.
func (a *app) kafkaConfig() kafkaclient.Config {
	return kafkaclient.Config{Brokers: a.g.brokers, ClientID: a.g.clientID, TLS: a.g.tls, SASL: a.g.sasl}
}

// printer writes to stdout in the -o format.
func (a *app) printer() render.Printer {
	f, _ := render.ParseFormat(a.g.output) // checked in applyEnv
	return render.Printer{W: a.env.Stdout, Format: f, Color: a.env.StdoutTTY && !a.g.noColor}
}

// exactArgs is cobra.ExactArgs whose error is a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// noArgs is cobra.NoArgs whose error is a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return usageError{err}
	}
	return nil
}
