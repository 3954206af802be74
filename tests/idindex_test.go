package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCorruptIDIndex damages the persisted id index of a stopped server:
// the filters of every run, one run cut in half, a half-written run left
// behind. The restarted server must not trust any of it: every id sent
// before is answered as a duplicate and stored once, and a new id is new.
func TestCorruptIDIndex(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "systemconfig.json")
	if err := os.WriteFile(cfgPath, []byte(killConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := serverOptions{DB: filepath.Join(dir, "odometer.db"), Config: cfgPath, Key: killKey, Dir: dir,
		Env: []string{"ODOMETER_SQLITE_ID_FLUSH=100"}}
	srv := startServer(t, opts)

	batch := func(n int) *ingestRequest {
		r := &ingestRequest{path: "/usagebatch"}
		for i := 0; i < killBatchSize; i++ {
			r.events = append(r.events, sentEvent{EventType: killTypes[i%len(killTypes)],
				ID: fmt.Sprintf("c-%04d-%02d", n, i), CustomerID: "cust_1", Value: float64(i)})
		}
		r.body, _ = json.Marshal(r.events)
		return r
	}
	const batches = 100
	var reqs []*ingestRequest
	for n := 0; n < batches; n++ {
		r := batch(n)
		r.send(srv)
		if before, err := r.stored(); err != nil || before {
			t.Fatalf("batch %d: before %v, %v", n, before, err)
		}
		reqs = append(reqs, r)
	}
	srv.Kill()

	runs, err := filepath.Glob(opts.DB + ".ids/*.ids")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) < 2 {
		t.Fatalf("%d runs: the test proves less than it says", len(runs))
	}
	for _, r := range runs {
		damage(t, r)
	}
	fi, err := os.Stat(runs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(runs[0], fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(runs[len(runs)-1]+".tmp", []byte("a run cut short"), 0o644); err != nil {
		t.Fatal(err)
	}

	srv = startServer(t, opts)
	for n, r := range reqs {
		r.send(srv)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if before, err := r.stored(); err != nil || !before {
			t.Fatalf("batch %d sent again: duplicate %v, %v", n, before, err)
		}
	}
	fresh := batch(batches)
	fresh.send(srv)
	if before, err := fresh.stored(); err != nil || before {
		t.Fatalf("a new batch: duplicate %v, %v", before, err)
	}
	events := readAllEvents(t, srv)
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.ID] {
			t.Fatalf("%s stored twice", e.ID)
		}
		seen[e.ID] = true
	}
	if got, want := len(events), (batches+1)*killBatchSize; got != want {
		t.Fatalf("%d events stored, want %d", got, want)
	}
	if out := srv.Output(); !strings.Contains(out, "damaged run") {
		t.Fatalf("the server did not report the damage; its output:\n%s", out)
	}
	report(t, "corrupt id index: %d runs damaged (filters; one also cut in half), %d batches sent again: all duplicates, %d events stored once each",
		len(runs), batches, len(events))
}

// damage flips a byte of a run's filters, near its end.
func damage(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	off := fi.Size() - 48 - 40 // before the trailer, in the meta
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
