package cmdline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/cmdline"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
)

type config struct {
	Addr     string `env:"ADDR" envDefault:":8080"`
	Database string `env:"DATABASE_URL"`
}

// command returns a Command whose Run records that it ran and returns err.
func command(ran *bool, err error) cmdline.Command {
	return cmdline.Command{
		Name:  "svc",
		About: "svc does one thing well.",
		Env:   envconfig.Vars[config],
		Run: func(context.Context, func(string) string, io.Writer) error {
			*ran = true
			return err
		},
	}
}

func TestArgumentsAreParsedBeforeTheServiceRuns(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		runErr     error
		wantCode   int
		wantRan    bool
		wantStdout []string
		wantStderr string
	}{
		{name: "help lists every variable with its default", args: []string{"--help"}, wantCode: 0,
			wantStdout: []string{"Usage: svc", "svc does one thing well.", "ADDR", "default :8080", "DATABASE_URL", "(no default)"}},
		{name: "-h is help", args: []string{"-h"}, wantCode: 0, wantStdout: []string{"DATABASE_URL"}},
		{name: "version", args: []string{"--version"}, wantCode: 0, wantStdout: []string{"svc ", "revision"}},
		{name: "unknown argument", args: []string{"--port=1"}, wantCode: 2, wantStderr: `svc: unknown argument "--port=1"`},
		{name: "no argument runs the service", wantCode: 0, wantRan: true},
		{name: "a failing service exits 1", runErr: errors.New("boom"), wantCode: 1, wantRan: true, wantStderr: "svc: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran bool
			var stdout, stderr bytes.Buffer
			code := command(&ran, tt.runErr).Main(t.Context(), tt.args, func(string) string { return "" }, &stdout, &stderr)
			if code != tt.wantCode || ran != tt.wantRan {
				t.Errorf("exit %d, ran %v; want exit %d, ran %v (stderr %q)", code, ran, tt.wantCode, tt.wantRan, stderr.String())
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout %q lacks %q", stdout.String(), want)
				}
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) || strings.Count(stderr.String(), "\n") > 1 {
				t.Errorf("stderr %q, want one line containing %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
