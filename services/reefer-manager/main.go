// Command reefer-manager runs the reefer-manager service (package manager); see
// reefer-manager --help and README.md.
package main

import (
	"context"
	"io"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/cmdline"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
	"github.com/reeferdlq/reefer-dlq/services/reefer-manager/manager"
)

func main() { cmdline.Main(command()) }

func command() cmdline.Command {
	return cmdline.Command{Name: "reefer-manager", About: manager.About, Env: envconfig.Vars[manager.Config], Run: run}
}

// run reads the configuration, builds the logger and runs the service.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := manager.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	return manager.Run(ctx, cfg.NewLogger(stdout), cfg)
}
