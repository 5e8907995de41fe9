package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestBadCommandLinesExitWithUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"help", []string{"--help"}, 0, "Usage:"},
		{"unknown flag", []string{"--order", "3"}, 2, "flag provided but not defined: -order"},
		{"argument", []string{"extra"}, 2, `unexpected argument "extra"`},
		{"speed out of range", []string{"--speed", "100"}, 2, "--speed 100"},
		{"bad postgres URL", []string{"--postgres", "localhost"}, 2, "--postgres"},
		{"bad brokers", []string{"--brokers", "kafka"}, 2, "--brokers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tt.args, code, stderr.String(), tt.code, tt.want)
			}
		})
	}
}
