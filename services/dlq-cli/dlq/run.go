package dlq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/buildinfo"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/telemetry"
)

// Exit codes of the dlq command.
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitError: something failed (broker unreachable, topic missing,
	// a write refused, interrupted).
	ExitError = 1
	// ExitUsage: the command line or the environment is wrong (unknown
	// flag, bad value, missing --yes when stdin is not a terminal).
	ExitUsage = 2
	// ExitNoMatch: nothing matched the filters.
	ExitNoMatch = 3
)

// Env is everything the command takes from the process it runs in, so that
// main, the local demo and the tests run the same code.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// StdinTTY, StdoutTTY and StderrTTY say which streams are terminals:
	// a terminal stdin may be asked for confirmation, a terminal stdout
	// gets colors, a terminal stderr a progress bar.
	StdinTTY, StdoutTTY, StderrTTY bool
	// Getenv reads the environment; nil means none is set.
	Getenv func(string) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTPClient sends the --when-healthy probes; nil means a default one.
	HTTPClient *http.Client
	// Tracing gives each redriven copy a span (see redrive.Engine). nil:
	// Run builds it from the OTEL_* variables Getenv returns (off
	// without an endpoint).
	Tracing trace.TracerProvider
}

func (e Env) getenv(key string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(key)
}

func (e Env) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// usageError marks an error of the command line: exit code 2, and the
// command's usage is printed after the message.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// noMatchError: exit code 3.
type noMatchError struct{ what string }

func (n noMatchError) Error() string { return n.what }

var errNoMatch = noMatchError{"nothing matched the filters"}

// Run runs the dlq command line args (without the program name) and returns
// the exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdin == nil {
		env.Stdin = eofReader{}
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Tracing == nil {
		tel, err := telemetry.ConfigFromEnv(env.getenv)
		if err == nil {
			var p *telemetry.Provider
			if p, err = telemetry.New(ctx, tel, "dlq", buildinfo.Read().Version); err == nil {
				env.Tracing = p.Tracing()
				// Export the redrive spans before the process exits.
				defer func() {
					sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
					defer cancel()
					if err := p.Shutdown(sctx); err != nil {
						fmt.Fprintf(env.Stderr, "dlq: %v\n", err)
					}
				}()
			}
		}
		if err != nil {
			return exitCode(nil, usageError{err}, env.Stderr)
		}
	}
	root := NewCommand(env)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	return exitCode(cmd, err, env.Stderr)
}

// exitCode prints err the way its kind asks for and maps it to a code.
func exitCode(cmd *cobra.Command, err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	if nm, ok := errors.AsType[noMatchError](err); ok {
		fmt.Fprintf(stderr, "dlq: %s\n", nm.what)
		return ExitNoMatch
	}
	if _, ok := errors.AsType[usageError](err); ok {
		// One line for the problem, one for where help is: the usage of a
		// command is 40 lines that hide the message.
		fmt.Fprintf(stderr, "dlq: %s\n", firstLine(err.Error()))
		path := "dlq"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(stderr, "run '%s --help' for usage\n", path)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "dlq: %v\n", err)
	return ExitError
}

// firstLine keeps the first line of a message (errors.Join makes several).
func firstLine(s string) string {
	first, rest, more := strings.Cut(s, "\n")
	if more && strings.TrimSpace(rest) != "" {
		return first + " (and more)"
	}
	return first
}

// Version is the release of dlq; the build sets it with
// -ldflags "-X github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq.Version=v1.2.3".
var Version = ""

// version is Version, else the module version or VCS revision the Go
// toolchain stamped into the binary.
func version() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	if v == "" {
		return "(devel)"
	}
	return v
}

// eofReader is an empty stdin.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// who names the person running the command, for the resolution log:
// DLQ_OPERATOR when set (a bot, a shared on-call account), else user@host.
func who(env Env) string {
	if op := env.getenv("DLQ_OPERATOR"); op != "" {
		return op
	}
	user := env.getenv("USER")
	if user == "" {
		user = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return user
	}
	return user + "@" + host
}
