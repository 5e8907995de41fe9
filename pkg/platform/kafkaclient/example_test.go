package kafkaclient_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// A consumer that follows the rule: every commit has a deadline, and the
// fetch loop has stopped before Close runs.
func ExampleConfig_NewReader() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	var cfg kafkaclient.Config
	if err := env.Parse(&cfg); err != nil {
		log.Error("read KAFKA_* variables", "err", err)
		return
	}
	if err := cfg.Validate(); err != nil {
		log.Error("invalid Kafka configuration", "err", err)
		return
	}
	log.Info("kafka", "config", cfg) // the password is masked

	r, err := cfg.NewReader(kafka.ReaderConfig{GroupID: "reefer-manager", Topic: "orders"})
	if err != nil {
		log.Error("create reader", "err", err)
		return
	}
	defer r.Close() // runs once the loop below has stopped fetching

	for {
		m, err := r.FetchMessage(ctx) // ctx ends on SIGTERM: the loop stops
		if errors.Is(err, context.Canceled) {
			return
		}
		if err != nil {
			log.Error("fetch", "err", err)
			return
		}
		// ... process m ...

		// Not ctx: a commit must still run during shutdown, and must not
		// wait forever.
		commitCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = r.CommitMessages(commitCtx, m)
		cancel()
		if err != nil {
			log.Warn("commit failed; the record will be redelivered", "offset", m.Offset, "err", err)
		}
	}
}
