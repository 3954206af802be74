package tests

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"
)

// diskFullBatch is the number of events of each batch the disk-full test
// posts.
const diskFullBatch = 500

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends, after the server on it is stopped. Only root can
// mount: others skip.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the disk-full test mounts a small tmpfs, which needs root (CI runs as root); skipped as uid", os.Getuid())
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("mount -t tmpfs on %s: %v: skipped, this machine cannot mount a small filesystem", dir, err)
	}
	// Registered before the server starts, so it runs after the server's
	// own cleanup has killed it.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("umount %s: %v", dir, err)
		}
	})
	return dir
}

// diskFullBody is batch n's body; the same n gives the same bytes.
func diskFullBody(n int) []byte {
	events := make([]map[string]any, diskFullBatch)
	for i := range events {
		events[i] = map[string]any{
			"eventType":  "api.calls",
			"customerId": fmt.Sprintf("cust_%d", i%7),
			"value":      float64(i%40+1) / 4,
			"id":         fmt.Sprintf("df-%05d-%03d", n, i),
			"metadata":   map[string]string{"pad": "the metadata makes each event take some room in the file"},
		}
	}
	b, _ := json.Marshal(events)
	return b
}

// TestDiskFull runs the binary with its database on an 8 MiB tmpfs that a
// 3 MiB filler file shares, and posts batches until the disk is full.
// Every refusal must be 503 or 507 with a JSON error; nothing
// acknowledged may be lost. Once the filler is deleted, ingest must
// resume without a restart. The file must pass PRAGMA integrity_check,
// a restart must find every acknowledged event, and the aggregates must
// equal a computation from scratch.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a filesystem")
	}
	dir := mountTmpfs(t, 8<<20)
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "systemconfig.json")
	if err := os.WriteFile(cfg, []byte(hostileConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "odometer.db")
	opts := serverOptions{DB: db, Config: cfg, Key: hostileAdminKey, Dir: t.TempDir()}
	srv := startServer(t, opts)

	acked := map[int]bool{} // batches answered 2xx
	var refused []int       // batches answered 503 or 507
	bad := 0
	post := func(n int) int {
		a, err := srv.send("POST", "/usagebatch", hostileAdminKey, diskFullBody(n), nil)
		if err != nil {
			select {
			case <-srv.done:
				t.Fatalf("batch %d: the server exited on a full disk: %v; its output:\n%s", n, err, srv.Output())
			default:
			}
			t.Fatalf("batch %d: %v", n, err)
		}
		switch {
		case a.Status == http.StatusCreated:
			acked[n] = true
		case a.Status == http.StatusServiceUnavailable || a.Status == http.StatusInsufficientStorage:
			if !a.jsonError() {
				t.Errorf("batch %d: status %d without a JSON error: %q", n, a.Status, a.Body)
			}
			if a.Status == http.StatusServiceUnavailable && a.Header.Get("Retry-After") == "" {
				t.Errorf("batch %d: 503 without Retry-After", n)
			}
		default:
			bad++
			if bad <= 5 {
				t.Errorf("batch %d: status %d, want 201, 503 or 507: %s", n, a.Status, a.Body)
			}
		}
		return a.Status
	}

	// Fill: post until five batches in a row are refused.
	n, inRow, firstRefusal := 0, 0, -1
	for ; inRow < 5; n++ {
		if n >= 2000 {
			t.Fatalf("%d batches of %d events stored on an 8 MiB filesystem and none refused", len(acked), diskFullBatch)
		}
		if st := post(n); st >= 500 {
			refused = append(refused, n)
			inRow++
			if firstRefusal < 0 {
				firstRefusal = n
			}
		} else {
			inRow = 0
		}
	}
	if a := srv.mustSend(t, "GET", "/readyz", "", nil); a.Status != http.StatusOK && a.Status != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz on a full disk: status %d", a.Status)
	}
	// An aggregation on the full disk either fits or is refused as
	// unavailable, never as an internal error.
	trigger := srv.mustSend(t, "POST", "/aggregations/trigger", hostileAdminKey, nil)
	if trigger.Status != http.StatusOK && (trigger.Status != http.StatusServiceUnavailable || !trigger.jsonError()) {
		t.Errorf("POST /aggregations/trigger on a full disk: status %d, want 200 or 503: %s", trigger.Status, trigger.Body)
	}

	// Free the space: ingest must come back by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	resumed := -1
	for try := 0; try < 100; try++ {
		if post(n) == http.StatusCreated {
			resumed = try
			n++
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resumed < 0 {
		t.Fatalf("ingest did not resume within 100 tries after the space was freed; server output:\n%s", srv.Output())
	}
	// The refused batches, sent again, were not stored before.
	storedBefore := 0
	for _, r := range refused {
		a := srv.mustSend(t, "POST", "/usagebatch", hostileAdminKey, diskFullBody(r))
		switch a.Status {
		case http.StatusCreated:
			acked[r] = true
		case http.StatusOK:
			acked[r] = true
			storedBefore++
			t.Errorf("batch %d was refused with a 5xx but had been stored", r)
		default:
			t.Errorf("batch %d sent again after the space was freed: status %d: %s", r, a.Status, a.Body)
		}
	}

	lost := checkBatchesStored(t, srv, acked)
	// The aggregation that the full disk refused leaves nothing wrong
	// behind: the next one equals a computation from scratch.
	checkDailyAggregates(t, srv, readAllEvents(t, srv))
	srv.Kill()
	integrity := integrityCheck(t, db)

	// A fresh start on the same file finds every acknowledged event.
	srv = startServer(t, opts)
	lostAfterRestart := checkBatchesStored(t, srv, acked)
	srv.Kill()

	report(t, "disk full: batches tried %d (%d events each); acknowledged %d; refused %d (first at batch %d); other statuses %d; "+
		"trigger on the full disk %d; resumed after %d tries once freed; refused but stored %d; lost %d, after a restart %d; integrity_check %s",
		n+len(refused), diskFullBatch, len(acked), len(refused), firstRefusal, bad, trigger.Status, resumed+1, storedBefore, lost, lostAfterRestart, integrity)
}

// checkBatchesStored reads every stored event and returns how many
// acknowledged events are missing; it fails on any missing or duplicated.
func checkBatchesStored(t *testing.T, srv *server, acked map[int]bool) int {
	t.Helper()
	seen := map[string]int{}
	for _, id := range srv.eventIDs(t, "") {
		seen[id]++
	}
	lost, dup := 0, 0
	for n := range acked {
		for i := range diskFullBatch {
			id := fmt.Sprintf("df-%05d-%03d", n, i)
			switch seen[id] {
			case 0:
				lost++
				if lost <= 5 {
					t.Errorf("event %s was acknowledged but is not stored", id)
				}
			case 1:
			default:
				dup++
			}
		}
	}
	if got, want := len(seen), len(acked)*diskFullBatch; got != want {
		t.Errorf("%d distinct events stored, want %d (the acknowledged batches)", got, want)
	}
	if lost > 0 || dup > 0 {
		t.Errorf("lost %d, duplicated %d", lost, dup)
	}
	return lost
}

// integrityCheck opens the stopped server's file read-only and runs
// PRAGMA integrity_check, which must say "ok".
func integrityCheck(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		t.Fatalf("PRAGMA integrity_check: %v", err)
	}
	if res != "ok" {
		t.Errorf("PRAGMA integrity_check: %s", res)
	}
	return res
}
