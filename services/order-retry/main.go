// Command order-retry runs the order-retry service (package retrier); see
// order-retry --help and README.md.
package main

import (
	"context"
	"io"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/cmdline"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
)

func main() { cmdline.Main(command()) }

func command() cmdline.Command {
	return cmdline.Command{Name: "order-retry", About: retrier.About, Env: envconfig.Vars[retrier.Config], Run: run}
}

// run reads the configuration, builds the logger and runs the service.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := retrier.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	return retrier.Run(ctx, cfg.NewLogger(stdout), cfg)
}
