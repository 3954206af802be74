package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/odometer-dev/odometer"
)

// TestStoreError: what a client is told of each kind of database error.
func TestStoreError(t *testing.T) {
	sqlErr := func(code string) error {
		return &pgconn.PgError{Code: code, Message: "some detail", Detail: "SELECT secret FROM events"}
	}
	tests := []struct {
		name string
		err  error
		code string
	}{
		{"DiskFull", sqlErr("53100"), odometer.EUNAVAILABLE},
		{"OutOfMemory", sqlErr("53200"), odometer.EUNAVAILABLE},
		{"TooManyConnections", sqlErr("53300"), odometer.EUNAVAILABLE},
		{"ConnectionFailure", sqlErr("08006"), odometer.EUNAVAILABLE},
		{"AdminShutdown", sqlErr("57P01"), odometer.EUNAVAILABLE},
		{"IOError", sqlErr("58030"), odometer.EUNAVAILABLE},
		{"ReadOnly", sqlErr("25006"), odometer.EUNAVAILABLE},
		{"LostConnection", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), odometer.EUNAVAILABLE},
		{"ConnClosed", pgconn.ErrConnClosed, odometer.EUNAVAILABLE},
		{"BadText", sqlErr("22021"), odometer.EINVALID},
		{"UniqueViolation", sqlErr("23505"), odometer.EINTERNAL},
		{"SyntaxError", sqlErr("42601"), odometer.EINTERNAL},
		{"Other", errors.New("something else"), odometer.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := storeError("op", tt.err)
			if got, want := odometer.ErrorCode(err), tt.code; got != want {
				t.Fatalf("code %q, want %q (%v)", got, want, err)
			}
			if msg := odometer.ErrorMessage(err); msg == "" || contains(msg, "secret", "some detail") {
				t.Fatalf("message %q shows the database error", msg)
			}
		})
	}

	t.Run("Canceled", func(t *testing.T) {
		if err := storeError("op", fmt.Errorf("x: %w", context.Canceled)); !errors.Is(err, context.Canceled) {
			t.Fatalf("%v, want context.Canceled", err)
		}
	})
	t.Run("Nil", func(t *testing.T) {
		if err := storeError("op", nil); err != nil {
			t.Fatalf("%v, want nil", err)
		}
	})
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
	}
	return false
}
