package reeferstore_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

func TestOpenRejectsBadURLs(t *testing.T) {
	tests := []struct {
		name      string
		url       string
		wantInMsg string
	}{
		{name: "empty", url: "", wantInMsg: "DATABASE_URL is empty"},
		{name: "unknown scheme", url: "mysql://u@h/db", wantInMsg: "want postgres://"},
		{name: "plain word", url: "reefers", wantInMsg: "sqlite:<path>"},
		{name: "postgres without host", url: "postgres:///db", wantInMsg: "not a valid Postgres URL"},
		{name: "password is not echoed", url: "postgres://user:s3cret@/db", wantInMsg: "xxxxx"},
		{name: "sqlite without path", url: "sqlite:", wantInMsg: "names no SQLite file"},
		{name: "in-memory sqlite", url: "sqlite::memory:", wantInMsg: "in-memory SQLite is not supported"},
		{name: "bad sqlite parameters", url: "sqlite:x.db?%zz", wantInMsg: "SQLite parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := reeferstore.Open(t.Context(), tt.url, nil)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tt.url)
			}
			if !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("Open(%q) = %q, want it to contain %q", tt.url, err, tt.wantInMsg)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Open(%q) error leaks the password: %q", tt.url, err)
			}
		})
	}
}

func TestOpenAcceptsEverySQLiteForm(t *testing.T) {
	dir := t.TempDir()
	forms := []string{
		"sqlite:" + filepath.Join(dir, "a.db"),
		"sqlite://" + filepath.Join(dir, "b.db"),
		"file:" + filepath.Join(dir, "c.sqlite"),
		filepath.Join(dir, "d.db"),
		filepath.Join(dir, "e.db") + "?_pragma=busy_timeout(250)",
	}
	for _, u := range forms {
		t.Run(u, func(t *testing.T) {
			s, err := reeferstore.Open(t.Context(), u, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("Open(%q): %v", u, err)
			}
			defer s.Close()
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
		})
	}
}

// A service that starts before its database must get an error it can
// classify (and retry), not a hang or a permanent failure.
func TestOpenUnreachablePostgresIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := reeferstore.Open(ctx, "postgres://reefer:pw@"+addr+"/reefer?sslmode=disable", nil)
	if err == nil {
		_ = s.Close()
		t.Fatal("Open succeeded with no server listening")
	}
	if failure.ClassOf(err) != failure.Transient {
		t.Errorf("Open error %v has class %q, want transient", err, failure.ClassOf(err))
	}
}
