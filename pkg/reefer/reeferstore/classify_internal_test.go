package reeferstore

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
)

// SQLSTATE class 28 (the credentials) and 42 (the schema) are the
// deployment's fault, the same for every order: config, so that orders
// are retried and the breaker and alerts see it, not dead-lettered as
// permanent at their first attempt.
func TestSQLStateClassesOfTheDeploymentAreConfig(t *testing.T) {
	tests := []struct {
		code  string
		class failure.Class
	}{
		{"28P01", failure.Config}, // invalid_password
		{"28000", failure.Config}, // invalid_authorization_specification
		{"42P01", failure.Config}, // undefined_table
		{"42703", failure.Config}, // undefined_column
		{"42501", failure.Config}, // insufficient_privilege
		{"23505", failure.Permanent},
		{"22003", failure.Permanent},
		{"57014", failure.Transient},
		{"08006", failure.Transient},
		{"40001", failure.Transient},
	}
	for _, tt := range tests {
		err := classify(&pgconn.PgError{Code: tt.code, Message: "test"})
		if got := failure.ClassOf(err); got != tt.class {
			t.Errorf("SQLSTATE %s: class %q, want %q", tt.code, got, tt.class)
		}
	}
}
