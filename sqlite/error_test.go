package sqlite

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/odometer-dev/odometer"
)

// TestStoreError: a full disk or an I/O error is EUNAVAILABLE in each
// form the driver returns it: a bare primary code, an extended code, and
// either wrapped; other errors are not.
func TestStoreError(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		code string
	}{
		{"Full", sqlite3.FULL, odometer.EUNAVAILABLE},
		{"IOErr", sqlite3.IOERR, odometer.EUNAVAILABLE},
		{"IOErrWrite", sqlite3.IOERR_WRITE, odometer.EUNAVAILABLE},
		{"IOErrFsync", sqlite3.IOERR_FSYNC, odometer.EUNAVAILABLE},
		{"WrappedIOErrWrite", fmt.Errorf("commit: %w", sqlite3.IOERR_WRITE), odometer.EUNAVAILABLE},
		{"ReadOnly", sqlite3.READONLY, odometer.EUNAVAILABLE},
		{"CantOpen", sqlite3.CANTOPEN, odometer.EUNAVAILABLE},
		{"Constraint", sqlite3.CONSTRAINT_UNIQUE, odometer.EINTERNAL},
		{"Other", errors.New("something else"), odometer.EINTERNAL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := storeError("op", tt.err)
			if got, want := odometer.ErrorCode(err), tt.code; got != want {
				t.Fatalf("storeError(%v) code %q, want %q", tt.err, got, want)
			}
		})
	}
}
