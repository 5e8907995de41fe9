// Command loadgen sends OrderCreated events to the orders topic of any
// Kafka cluster at a chosen rate: the scenario driver of the compose stack
// and of Kubernetes deployments (`make load`).
//
//	loadgen -brokers localhost:9092 -orders 10000 -rate 500
//
// TLS and SASL come from the contract's variables (KAFKA_TLS,
// KAFKA_SASL_MECHANISM, ...), as for the services; flags win over
// KAFKA_BROKERS and ORDERS_TOPIC. Run loadgen -h for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/reeferdlq/reefer-dlq/deployments/loadgen/orderload"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// errUsage marks a command-line mistake; the flag package printed it.
var errUsage = errors.New("usage")

// run parses the command line and the environment, sends the orders and
// prints progress on stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	kafkaCfg, err := envconfig.Parse[kafkaclient.Config](getenv)
	if err != nil {
		return err
	}
	topic := getenv("ORDERS_TOPIC")
	if topic == "" {
		topic = "orders"
	}
	cfg := orderload.Config{Kafka: kafkaCfg, Topic: topic}

	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", strings.Join(kafkaCfg.Brokers, ","), "bootstrap brokers, comma-separated host:port (env KAFKA_BROKERS)")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "orders topic (env ORDERS_TOPIC)")
	fs.IntVar(&cfg.Orders, "orders", 1000, "records to send")
	fs.Float64Var(&cfg.Rate, "rate", 100, "records per second; 0 sends as fast as the broker takes them")
	fs.StringVar(&cfg.RunID, "run", time.Now().UTC().Format("20060102T150405"), "run id in every order id (O-<run>-000001): a new one per run, so runs do not share orders")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the generated orders")
	fs.Float64Var(&cfg.Oversize, "oversize", 0.02, "share of orders too big for any reefer (they end as OrderRejected)")
	fs.Float64Var(&cfg.Poison, "poison", 0, "share of records that are no event (dead-lettered as poison)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: loadgen [flags]\n\nSends OrderCreated events to the orders topic at a chosen rate.\nTLS and SASL: the KAFKA_TLS* and KAFKA_SASL* variables of docs/contract.md.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadgen: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	cfg.Kafka.Brokers = strings.Split(*brokers, ",")
	if cfg.Kafka.ClientID == "" {
		cfg.Kafka.ClientID = "loadgen"
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	rate := "as fast as possible"
	if cfg.Rate > 0 {
		rate = fmt.Sprintf("%g/s", cfg.Rate)
	}
	fmt.Fprintf(stdout, "loadgen: %d records to %s on %s at %s (run %s)\n", cfg.Orders, cfg.Topic, *brokers, rate, cfg.RunID)
	cfg.Progress = func(r orderload.Report) {
		fmt.Fprintf(stdout, "loadgen: sent %d/%d (%.0f/s; %d oversize, %d poison)\n", r.Sent, cfg.Orders, r.Rate(), r.Oversize, r.Poison)
	}
	rep, err := orderload.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "loadgen: done: %d records in %s\n", rep.Sent, rep.Elapsed.Round(time.Millisecond))
	return nil
}
