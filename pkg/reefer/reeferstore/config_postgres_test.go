package reeferstore_test

import (
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// A rotated password (SQLSTATE 28P01) is the deployment's fault, the same
// for every order: a real Postgres refusing it gives a config error, and
// the password is not in it.
func TestPostgresRefusedPasswordIsConfigAndNotPrinted(t *testing.T) {
	_, dsn := startPostgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	const wrong = "rotated-s3cret"
	u.User = url.UserPassword(u.User.Username(), wrong)
	s, err := reeferstore.Open(t.Context(), u.String(), slog.New(slog.DiscardHandler))
	if err == nil {
		_ = s.Close()
		t.Fatal("Open with a wrong password succeeded")
	}
	if got := failure.ClassOf(err); got != failure.Config {
		t.Errorf("class of %v = %q, want config", err, got)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("the error shows the password: %v", err)
	}
}
