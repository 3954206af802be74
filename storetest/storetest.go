// Package storetest opens every store under test, for the one contract
// suite that all stores must pass: SQLite always, PostgreSQL when
// ODOMETER_TEST_POSTGRES_URL names a server.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/postgres"
	"github.com/odometer-dev/odometer/sqlite"
)

// Factory opens a fresh, empty store, closed when the test ends.
type Factory struct {
	Name string
	Open func(tb testing.TB) odometer.Store
	// Skip says why the store is not under test, or is "".
	Skip string
}

// PostgresEnv names the PostgreSQL server of the tests.
const PostgresEnv = "ODOMETER_TEST_POSTGRES_URL"

const postgresSkip = "PostgreSQL store not tested: " + PostgresEnv + " is not set. Run them with " +
	PostgresEnv + "=postgres://postgres@127.0.0.1:5432/test?sslmode=disable go test ./..."

// Factories returns a factory for each store under test.
func Factories() []Factory {
	pg := Factory{Name: "postgres", Open: func(tb testing.TB) odometer.Store { return OpenPostgres(tb) }}
	if os.Getenv(PostgresEnv) == "" {
		pg.Skip = postgresSkip
	}
	return []Factory{
		{Name: "sqlite", Open: func(tb testing.TB) odometer.Store { return OpenSQLite(tb) }},
		pg,
	}
}

// Each runs f as a subtest for every store under test.
func Each(t *testing.T, f func(t *testing.T, open func(tb testing.TB) odometer.Store)) {
	for _, fac := range Factories() {
		t.Run(fac.Name, func(t *testing.T) {
			if fac.Skip != "" {
				t.Skip(fac.Skip)
			}
			f(t, fac.Open)
		})
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

// OpenPostgres opens a new PostgreSQL store in a schema of its own (see
// PostgresSchema). It skips the test when ODOMETER_TEST_POSTGRES_URL is
// not set.
func OpenPostgres(tb testing.TB) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), PostgresSchema(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// PostgresSchema creates an empty schema in the database of
// ODOMETER_TEST_POSTGRES_URL, dropped with everything in it when the test
// ends, and returns the URL of that database with the schema as its
// search_path: each test gets a database of its own, and stores opened on
// the URL act as replicas of one deployment. It skips the test when the
// variable is not set.
func PostgresSchema(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		tb.Skip(postgresSkip)
	}
	var b [8]byte
	rand.Read(b[:])
	schema := "odotest_" + hex.EncodeToString(b[:])
	exec := func(sql string) error {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(`CREATE SCHEMA ` + schema); err != nil {
		tb.Fatalf("%s: create schema: %v", PostgresEnv, err)
	}
	tb.Cleanup(func() {
		if err := exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			tb.Fatalf("%s: %v", PostgresEnv, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return base + " search_path=" + schema
}
