package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
)

func TestRunSendsTheOrdersTheFlagsAskFor(t *testing.T) {
	b, err := devbroker.Start(t.Context(), devbroker.Config{Topics: map[string]int{"orders-test": 3}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	env := map[string]string{"ORDERS_TOPIC": "orders-test"}
	var stdout strings.Builder
	err = run(t.Context(), []string{"-brokers", b.Addr(), "-orders", "25", "-rate", "0", "-run", "cli"}, func(k string) string { return env[k] }, &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"25 records to orders-test on " + b.Addr() + " at as fast as possible (run cli)", "done: 25 records"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string // in the error, or "usage" for errUsage, "help" for -h
	}{
		{"a flag that is no number", []string{"-orders", "many"}, nil, "usage"},
		{"an argument", []string{"now"}, nil, "usage"},
		{"help", []string{"-h"}, nil, "help"},
		{"a negative rate", []string{"-rate", "-5"}, nil, "rate -5"},
		{"a broker without port", []string{"-brokers", "kafka"}, nil, "KAFKA_BROKERS"},
		{"an unknown SASL mechanism", nil, map[string]string{"KAFKA_SASL_MECHANISM": "kerberos"}, "KAFKA_SASL_MECHANISM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := run(t.Context(), tc.args, func(k string) string { return tc.env[k] }, io.Discard, io.Discard)
			switch tc.wantErr {
			case "usage":
				if !errors.Is(err, errUsage) {
					t.Fatalf("run error %v, want a usage error", err)
				}
			case "help":
				if !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("run error %v, want flag.ErrHelp", err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("run error %v, want one containing %q", err, tc.wantErr)
				}
			}
		})
	}
}
