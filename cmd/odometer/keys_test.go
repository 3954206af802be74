package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/sqlite"
)

func TestKeys_Server(t *testing.T) {
	ts := startServer(t)
	admin := ts.flags(ts.AdminKey)

	var id string
	t.Run("Create", func(t *testing.T) {
		r := mustRun(t, append([]string{"keys", "create", "--scope", "read", "--customer", "cust_a", "--name", "usage page"}, admin...)...)
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		if got, want := len(lines), 1; got != want {
			t.Fatalf("stdout has %d lines, want %d: %q", got, want, r.stdout)
		}
		secret := lines[0]
		if !strings.HasPrefix(secret, odometer.KeyPrefix) {
			t.Fatalf("key %q does not start with %s", secret, odometer.KeyPrefix)
		}
		if strings.Contains(r.stderr, secret) || !strings.Contains(r.stderr, "scope read") {
			t.Fatalf("stderr %q: want the details, not the key", r.stderr)
		}
		// The key works, pinned to its customer.
		k, err := ts.Store.FindKeyByHash(context.Background(), odometer.HashKey(secret))
		if err != nil {
			t.Fatal(err)
		}
		if k.Scope != odometer.ScopeRead || k.CustomerID != "cust_a" || k.Name != "usage page" {
			t.Fatalf("stored key %+v", k)
		}
		id = k.ID
		mustRun(t, "events", "list", "--server", ts.URL, "--api-key", secret, "--customer", "cust_a")
		mustFail(t, "404", "events", "list", "--server", ts.URL, "--api-key", secret, "--customer", "cust_b")
	})

	t.Run("List", func(t *testing.T) {
		r := mustRun(t, append([]string{"keys", "list"}, admin...)...)
		if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "usage page") {
			t.Fatalf("list lacks the new key:\n%s", r.stdout)
		}
		for _, k := range []string{ts.AdminKey, ts.IngestKey, ts.ReadKey} {
			if strings.Contains(r.stdout, k) {
				t.Fatal("list shows a secret")
			}
		}
		var keys []odometer.APIKey
		decodeJSON(t, mustRun(t, append([]string{"keys", "list", "-o", "json"}, admin...)...).stdout, &keys)
		if got, want := len(keys), 4; got != want {
			t.Fatalf("%d keys, want %d", got, want)
		}
		csv := mustRun(t, append([]string{"keys", "list", "-o", "csv"}, admin...)...).stdout
		if got, want := strings.Count(csv, "\n"), 5; got != want {
			t.Fatalf("csv has %d lines, want %d:\n%s", got, want, csv)
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		r := mustRun(t, append([]string{"keys", "revoke", id}, admin...)...)
		if !strings.Contains(r.stdout, "revoked "+id) {
			t.Fatalf("stdout %q", r.stdout)
		}
		mustFail(t, "404", append([]string{"keys", "revoke", id}, admin...)...)
	})

	t.Run("ErrScope", func(t *testing.T) {
		mustFail(t, "--scope must be", append([]string{"keys", "create", "--scope", "owner"}, admin...)...)
		mustFail(t, `required flag(s) "scope" not set`, append([]string{"keys", "create"}, admin...)...)
		mustFail(t, "only a read key can be pinned", append([]string{"keys", "create", "--scope", "ingest", "--customer", "c"}, admin...)...)
	})

	t.Run("ErrNotAdmin", func(t *testing.T) {
		mustFail(t, "403", "keys", "list", "--server", ts.URL, "--api-key", ts.ReadKey)
	})
}

// TestKeys_Store manages keys directly in a database, with no server.
func TestKeys_Store(t *testing.T) {
	db := filepath.Join(t.TempDir(), "odometer.db")
	r := mustRun(t, "keys", "create", "--scope", "admin", "--name", "ops", "--db", db)
	secret := strings.TrimSpace(r.stdout)
	if strings.Count(r.stdout, "\n") != 1 || !strings.HasPrefix(secret, odometer.KeyPrefix) {
		t.Fatalf("stdout %q: want the key alone", r.stdout)
	}
	r = mustRun(t, "keys", "list", "--db", db, "-o", "json")
	var keys []odometer.APIKey
	decodeJSON(t, r.stdout, &keys)
	if len(keys) != 1 || keys[0].Name != "ops" || keys[0].Scope != odometer.ScopeAdmin || strings.Contains(r.stdout, secret) {
		t.Fatalf("keys %s", r.stdout)
	}
	mustRun(t, "keys", "revoke", keys[0].ID, "--db", db)
	mustFail(t, "no live key", "keys", "revoke", keys[0].ID, "--db", db)
	mustFail(t, "only a read key", "keys", "create", "--scope", "admin", "--customer", "c", "--db", db)
	mustFail(t, "no such file", "keys", "list", "--db", db+".typo")

	// The store the server would open sees the revocation.
	s, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.FindKeyByHash(context.Background(), odometer.HashKey(secret)); odometer.ErrorCode(err) != odometer.ENOTFOUND {
		t.Fatalf("revoked key found: %v", err)
	}
}
