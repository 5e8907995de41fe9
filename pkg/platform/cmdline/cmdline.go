// Package cmdline is the whole main of a service: it takes arguments like
// any Unix tool, before anything connects anywhere, and then runs the
// service until SIGINT or SIGTERM.
//
//	-h, --help     what the service does, and every environment variable
//	               it reads with its default; exit 0
//	--version      the version the binary was built from; exit 0
//	anything else  a one-line hint on stderr; exit 2
//
// A service is configured by its environment only (twelve-factor), so it
// takes no other argument. Its main is one call:
//
//	func main() {
//		cmdline.Main(cmdline.Command{Name: "order-retry", About: about, Env: envconfig.Vars[retrier.Config], Run: run})
//	}
package cmdline

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/buildinfo"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
)

// Command describes a service process.
type Command struct {
	// Name is the binary's name, used in messages.
	Name string
	// About says what the service does, for --help: a few lines.
	About string
	// Env lists the environment variables the service reads, for --help;
	// envconfig.Vars[Config] of its Config.
	Env func() ([]envconfig.Var, error)
	// Run runs the service until ctx ends, reading its configuration
	// through getenv and logging to stdout.
	Run func(ctx context.Context, getenv func(string) string, stdout io.Writer) error
}

// Main runs c as the process and exits with its status.
func Main(c Command) {
	os.Exit(c.Main(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// Main parses args, then runs the service until ctx ends or the process
// receives SIGINT or SIGTERM. It returns the exit status: 0 after help,
// the version or a clean shutdown, 1 when the service failed, 2 for a bad
// argument.
func (c Command) Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	for _, arg := range args {
		switch arg {
		case "-h", "-help", "--help":
			if err := c.help(stdout); err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", c.Name, err)
				return 1
			}
			return 0
		case "-version", "--version":
			info := buildinfo.Read()
			fmt.Fprintf(stdout, "%s %s (revision %s, %s)\n", c.Name, info.Version, info.Revision, info.GoVersion)
			return 0
		default:
			fmt.Fprintf(stderr, "%s: unknown argument %q: it is configured by environment variables; see %s --help\n", c.Name, arg, c.Name)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.Run(ctx, getenv, stdout); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.Name, err)
		return 1
	}
	return 0
}

// help prints what the service does and every variable with its default.
func (c Command) help(w io.Writer) error {
	vars, err := c.Env()
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s [-h | --help | --version]\n\n%s\n\n", c.Name, strings.TrimSpace(c.About))
	b.WriteString("Configured by environment variables (an empty value counts as unset):\n\n")
	tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
	for _, v := range vars {
		def := "(no default)"
		if v.HasDefault {
			def = "default " + v.Default
			if v.Default == "" {
				def = `default ""`
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\n", v.Name, def)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = io.WriteString(w, b.String())
	return err
}
