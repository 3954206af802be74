package tests

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMDuringIngest: a SIGTERM while clients post events stops the
// server gracefully: every request that got a 2xx is stored, and the
// process exits 0 within its shutdown timeout.
func TestSIGTERMDuringIngest(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "odometer.db")
	s := startServer(t, serverOptions{DB: db, Key: "lifecycle-admin"})

	var mu sync.Mutex
	var acked []string
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("term-%d-%d", g, i)
				body := []byte(fmt.Sprintf(`{"customerId": "cust_%d", "value": 1, "id": %q}`, g, id))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				status, _, _, err := s.do(ctx, "POST", "/usage/api.calls", body)
				cancel()
				sent.Add(1)
				if err == nil && status/100 == 2 {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				} else if err != nil {
					return // the server has gone
				}
			}
		}(g)
	}
	time.Sleep(400 * time.Millisecond)
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(35 * time.Second):
		t.Fatalf("still running 35 s after SIGTERM; its output:\n%s", s.Output())
	}
	close(stop)
	wg.Wait()
	took := time.Since(start)
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0; its output:\n%s", code, s.Output())
	}
	if len(acked) == 0 {
		t.Fatal("no request was acknowledged before the SIGTERM: the test proves nothing")
	}

	s2 := startServer(t, serverOptions{DB: db, Key: "lifecycle-admin"})
	stored := map[string]int{}
	for g := 0; g < 8; g++ {
		for _, id := range s2.eventIDs(t, fmt.Sprintf("cust_%d", g)) {
			stored[id]++
		}
	}
	lost, dup := 0, 0
	for _, id := range acked {
		switch stored[id] {
		case 0:
			lost++
		case 1:
		default:
			dup++
		}
	}
	report(t, "SIGTERM: %d requests sent, %d acknowledged, %d lost, %d duplicated; exit 0 after %s",
		sent.Load(), len(acked), lost, dup, took.Round(time.Millisecond))
	if lost > 0 || dup > 0 {
		t.Fatalf("%d acknowledged events lost, %d stored twice", lost, dup)
	}
}

// TestSIGHUPReload: SIGHUP reloads systemconfig.json; a file that fails the
// start-up validation is refused with a log line, and the old one serves on.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "systemconfig.json")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"events": {"api.calls": {"op": "sum"}}}`)
	s := startServer(t, serverOptions{DB: filepath.Join(dir, "odometer.db"), Config: cfg, Key: "hup-admin"})
	post := func(typ string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		status, _, _, err := s.do(ctx, "POST", "/usage/"+typ, []byte(`{"customerId": "c", "value": 1}`))
		if err != nil {
			t.Fatalf("POST /usage/%s: %v", typ, err)
		}
		return status
	}
	hup := func(wantLog string) {
		t.Helper()
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(s.Output(), wantLog) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log 10 s after SIGHUP; its output:\n%s", wantLog, s.Output())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if got, want := post("storage.bytes"), http.StatusBadRequest; got != want {
		t.Fatalf("storage.bytes before the reload: %d, want %d", got, want)
	}

	// A bad file: refused, the old configuration serves on.
	write(`{"events": {"api.calls": {"op": "sum"}, "storage.bytes": {"op": "median"}}}`)
	hup("configuration not reloaded")
	if !strings.Contains(s.Output(), "median") {
		t.Errorf("the refusal does not say what is wrong; output:\n%s", s.Output())
	}
	if got, want := post("api.calls"), http.StatusCreated; got != want {
		t.Fatalf("api.calls after a refused reload: %d, want %d", got, want)
	}
	if got, want := post("storage.bytes"), http.StatusBadRequest; got != want {
		t.Fatalf("storage.bytes after a refused reload: %d, want %d", got, want)
	}

	// A good file: in force at once.
	write(`{"events": {"api.calls": {"op": "sum"}, "storage.bytes": {"op": "max"}}}`)
	hup("configuration reloaded")
	if got, want := post("storage.bytes"), http.StatusCreated; got != want {
		t.Fatalf("storage.bytes after the reload: %d, want %d", got, want)
	}
	var config struct {
		Events map[string]struct {
			Op string `json:"op"`
		} `json:"events"`
	}
	s.getJSON(t, "/config", &config)
	if got, want := config.Events["storage.bytes"].Op, "max"; got != want {
		t.Errorf("GET /config: storage.bytes op %q, want %q", got, want)
	}

	// A meter added: in force. Then its value path changed: refused, since
	// the states stored under its name would no longer mean what it says.
	write(`{"events": {"api.calls": {"op": "sum"}, "storage.bytes": {"op": "max"}},
		"meters": {"calls.byRegion": {"eventType": "api.calls", "op": "sum", "groupBy": ["region"]}}}`)
	hup(`"meters":"calls.byRegion"`)
	write(`{"events": {"api.calls": {"op": "sum"}, "storage.bytes": {"op": "max"}},
		"meters": {"calls.byRegion": {"eventType": "api.calls", "op": "sum", "groupBy": ["zone"]}}}`)
	before := strings.Count(s.Output(), "configuration not reloaded")
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(s.Output(), "configuration not reloaded") == before {
		if time.Now().After(deadline) {
			t.Fatalf("a changed groupBy was not refused; output:\n%s", s.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(s.Output(), "give the new definition a new name") {
		t.Errorf("the refusal does not say what to do; output:\n%s", s.Output())
	}
}
