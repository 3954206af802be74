// Package storetest opens every store under test, for the one contract
// suite that all stores must pass: SQLite always, PostgreSQL when
// ODOMETER_TEST_POSTGRES_URL names a server.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/sqlite"
)

// Factory opens a fresh, empty store, closed when the test ends.
type Factory struct {
	Name string
	Open func(tb testing.TB) odometer.Store
}

// Factories returns a factory for each store under test.
func Factories() []Factory {
	return []Factory{{Name: "sqlite", Open: func(tb testing.TB) odometer.Store { return OpenSQLite(tb) }}}
}

// Each runs f as a subtest for every store under test.
func Each(t *testing.T, f func(t *testing.T, open func(tb testing.TB) odometer.Store)) {
	for _, fac := range Factories() {
		t.Run(fac.Name, func(t *testing.T) { f(t, fac.Open) })
	}
}

// OpenSQLite opens a new SQLite store in a file of the test's temporary
// directory.
func OpenSQLite(tb testing.TB) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "odometer.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
