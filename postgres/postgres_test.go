package postgres_test

// Tests of what only a shared database has: replicas that migrate, ingest,
// aggregate and send at the same time, a replica killed while it holds the
// aggregation lock, and a network that goes away. The contract every store
// meets is tested in storetest, http and the root package.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/postgres"
	"github.com/odometer-dev/odometer/storetest"
)

// mustOpen opens a store (a replica) on url, closed when the test ends.
func mustOpen(tb testing.TB, url string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// query runs one statement on url outside any store.
func query(tb testing.TB, url, sql string, args ...any) pgx.Row {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(ctx) })
	return conn.QueryRow(ctx, sql, args...)
}

func TestOpen(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s := mustOpen(t, storetest.PostgresSchema(t))
		if err := s.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	})

	// Replicas that start together on an empty database all start, and
	// the migrations run once.
	t.Run("ConcurrentMigrate", func(t *testing.T) {
		u := storetest.PostgresSchema(t)
		const replicas = 4
		var wg sync.WaitGroup
		errs := make([]error, replicas)
		for i := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := postgres.Open(context.Background(), u)
				if err != nil {
					errs[i] = err
					return
				}
				s.Close()
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("replica %d: %v", i, err)
			}
		}
		var applied, migrations int
		if err := query(t, u, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&applied); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir("migrations")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".sql") {
				migrations++
			}
		}
		if got, want := applied, migrations; got != want {
			t.Fatalf("%d migrations recorded, want %d", got, want)
		}
	})

	t.Run("ErrNoSchema", func(t *testing.T) {
		u := storetest.PostgresSchema(t)
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		q := pu.Query()
		q.Set("search_path", "no_such_schema_here")
		pu.RawQuery = q.Encode()
		if s, err := postgres.Open(context.Background(), pu.String()); err == nil {
			s.Close()
			t.Fatal("opened a store with no schema to create its tables in")
		}
	})

	t.Run("ErrURL", func(t *testing.T) {
		_, err := postgres.Open(context.Background(), "postgres://user:secret@[::1/db")
		if err == nil {
			t.Fatal("opened a malformed URL")
		}
		if strings.Contains(err.Error(), "secret") {
			t.Fatalf("the error shows the password: %v", err)
		}
	})
}

// newEvents makes n events with client ids, for customers c0..c7.
func newEvents(prefix string, n int, at time.Time) []odometer.Event {
	events := make([]odometer.Event, n)
	for i := range events {
		events[i] = odometer.Event{ID: fmt.Sprintf("%s-%d", prefix, i), ClientID: true, EventType: "api.calls",
			CustomerID: fmt.Sprintf("c%d", i%8), Value: 1, Time: at, ReceivedAt: at}
	}
	return events
}

// TestCreateEvents_CommitOrder: with replicas ingesting at once, no event
// becomes visible with a seq below one already seen, so that the
// aggregation, running meanwhile on every replica, folds every event
// exactly once.
func TestCreateEvents_CommitOrder(t *testing.T) {
	u := storetest.PostgresSchema(t)
	replicas := []*postgres.Store{mustOpen(t, u), mustOpen(t, u), mustOpen(t, u)}
	cfg, err := odometer.ParseConfig("test", []byte(`{"periods": ["daily"], "events": {"api.calls": {"op": "sum"}}, "webhooks": []}`))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Second)
	ctx := context.Background()

	const writers, batches, batch = 6, 40, 20
	var wg sync.WaitGroup
	errc := make(chan error, writers+len(replicas)+1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := replicas[w%len(replicas)]
			for b := range batches {
				if _, err := s.CreateEvents(ctx, newEvents(fmt.Sprintf("w%d-b%d", w, b), batch, at)); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// Watch: the events at or below a seq once seen never change.
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		s := replicas[0]
		count := func(upto int64) (int, error) {
			n := 0
			err := s.ScanEvents(ctx, 0, upto, "", nil, func(*odometer.Event) error { n++; return nil })
			return n, err
		}
		var seenMax int64
		var seenCount int
		for {
			select {
			case <-done:
				return
			default:
			}
			max, err := s.MaxSeq(ctx)
			if err != nil {
				errc <- err
				return
			}
			n, err := count(seenMax)
			if err != nil {
				errc <- err
				return
			}
			if n != seenCount {
				errc <- fmt.Errorf("%d events at or below seq %d, then %d: one committed out of order", seenCount, seenMax, n)
				return
			}
			if seenCount, err = count(max); err != nil {
				errc <- err
				return
			}
			seenMax = max
		}
	}()
	for _, s := range replicas {
		watch.Add(1)
		go func() {
			defer watch.Done()
			agg := &odometer.Aggregator{Store: s, Config: func() *odometer.Config { return cfg }, Now: time.Now}
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := agg.Run(ctx); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	watch.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	agg := &odometer.Aggregator{Store: replicas[1], Config: func() *odometer.Config { return cfg }, Now: time.Now}
	if _, err := agg.Run(ctx); err != nil {
		t.Fatal(err)
	}
	aggs, _, err := replicas[2].FindAggregations(ctx, odometer.AggregationFilter{Period: odometer.Daily, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, a := range aggs {
		total += a.Values(cfg).Events["api.calls"]
	}
	if got, want := total, float64(writers*batches*batch); got != want {
		t.Fatalf("aggregations sum to %v, want %v: an event was folded twice or never", got, want)
	}
}

// TestCreateEvents_Replicas: the same id sent to two replicas at once is
// stored once; with another body, one of the two is a conflict.
func TestCreateEvents_Replicas(t *testing.T) {
	u := storetest.PostgresSchema(t)
	a, b := mustOpen(t, u), mustOpen(t, u)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Second)

	t.Run("Duplicate", func(t *testing.T) {
		var wg sync.WaitGroup
		dups := make([][]bool, 2)
		errs := make([]error, 2)
		for i, s := range []*postgres.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dups[i], errs[i] = s.CreateEvents(ctx, newEvents("same", 50, at))
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := range 50 {
			if dups[0][i] == dups[1][i] {
				t.Fatalf("event %d: duplicate flags %v and %v, want exactly one", i, dups[0][i], dups[1][i])
			}
		}
		events, _, err := a.FindEvents(ctx, odometer.EventFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(events), 50; got != want {
			t.Fatalf("%d events stored, want %d", got, want)
		}
	})

	t.Run("ErrConflict", func(t *testing.T) {
		one, other := newEvents("clash", 10, at), newEvents("clash", 10, at)
		for i := range other {
			other[i].Value = 2
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*postgres.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.CreateEvents(ctx, [][]odometer.Event{one, other}[i])
			}()
		}
		wg.Wait()
		codes := []string{odometer.ErrorCode(errs[0]), odometer.ErrorCode(errs[1])}
		if !(codes[0] == "" && codes[1] == odometer.ECONFLICT || codes[0] == odometer.ECONFLICT && codes[1] == "") {
			t.Fatalf("errors %v and %v, want one conflict", errs[0], errs[1])
		}
	})
}

// TestLockAggregation_Exclusive: one aggregation run at a time over all
// replicas, and a release lets the next one in.
func TestLockAggregation_Exclusive(t *testing.T) {
	u := storetest.PostgresSchema(t)
	a, b := mustOpen(t, u), mustOpen(t, u+"&application_name=waiter")
	ctx := context.Background()
	release, err := a.LockAggregation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	go func() {
		r, err := b.LockAggregation(ctx)
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- r
	}()
	waitLockWaiter(t, u)
	select {
	case <-got:
		t.Fatal("a second replica took the lock while the first held it")
	default:
	}
	release()
	r2 := <-got
	if r2 == nil {
		return
	}
	r2()
	// The other replica's lock is free again.
	r3, err := a.LockAggregation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r3()
}

// waitLockWaiter waits until the session of the test's schema named
// "waiter" waits for an advisory lock.
func waitLockWaiter(t *testing.T, u string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for range 500 {
		var waiting bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = 'waiter'
			AND a.datname = current_database())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no session waits for the aggregation lock")
}

// lockHolderEnv, when set to a URL, makes TestLockHolderProcess hold the
// aggregation lock of that database until it is killed.
const lockHolderEnv = "ODOMETER_TEST_LOCK_HOLDER_URL"

// TestLockHolderProcess is the process that TestLockAggregation_Takeover
// kills; it does nothing in a normal run.
func TestLockHolderProcess(t *testing.T) {
	u := os.Getenv(lockHolderEnv)
	if u == "" {
		return
	}
	s, err := postgres.Open(context.Background(), u)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if _, err := s.LockAggregation(context.Background()); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	select {}
}

// TestLockAggregation_Takeover: a replica killed (SIGKILL) while it holds
// the aggregation lock loses it at once, and another takes over.
func TestLockAggregation_Takeover(t *testing.T) {
	u := storetest.PostgresSchema(t)
	s := mustOpen(t, u)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolderProcess$")
	cmd.Env = append(os.Environ(), lockHolderEnv+"="+u)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("the holder process said %q (%v)", line, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if release, err := s.LockAggregation(ctx); err == nil {
		release()
		t.Fatal("took the lock while another process held it")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for the lock: %v, want a deadline", err)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	start := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	release, err := s.LockAggregation(ctx)
	if err != nil {
		t.Fatalf("the lock of a killed process was not released: %v", err)
	}
	release()
	t.Logf("took over %v after the kill", time.Since(start).Round(time.Millisecond))
}

// TestClaimDeliveries_Replicas: replicas claiming at once get disjoint
// deliveries, and every delivery once.
func TestClaimDeliveries_Replicas(t *testing.T) {
	u := storetest.PostgresSchema(t)
	a, b := mustOpen(t, u), mustOpen(t, u)
	ctx := context.Background()
	now := time.Date(2026, 1, 14, 0, 0, 0, 0, time.UTC)
	const endpoint, notes = "https://hooks.example.com/a", 300
	err := a.Aggregate(ctx, func(tx odometer.AggregationTx) error {
		ns := make([]*odometer.Notification, notes)
		for i := range ns {
			ns[i] = &odometer.Notification{Type: odometer.AggregationCompleted, AggregationID: fmt.Sprintf("c%d_daily_20260113", i),
				CustomerID: fmt.Sprintf("c%d", i), Revision: 1, Payload: []byte(`{}`), CreatedAt: now, Endpoints: []string{endpoint}}
		}
		return tx.AddNotifications(ns)
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for _, s := range []*postgres.Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ds, err := s.ClaimDeliveries(ctx, endpoint, now, time.Minute, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					claimed[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got, want := len(claimed), notes; got != want {
		t.Fatalf("%d deliveries claimed, want %d", got, want)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Fatalf("delivery %s claimed %d times", id, n)
		}
	}
}

// proxy forwards TCP connections to a server, and can cut them all.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(t *testing.T, addr, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() { io.Copy(c, s); c.Close() }()
	}
}

// cut closes the listener and every connection, as a network that fails.
func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestStore_ConnectionLost: when the database goes away, writes and reads
// answer EUNAVAILABLE with a message that shows nothing of the database,
// and the store recovers when it is back.
func TestStore_ConnectionLost(t *testing.T) {
	u := storetest.PostgresSchema(t)
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	target := pu.Host
	p := newProxy(t, "127.0.0.1:0", target)
	addr := p.ln.Addr().String()
	pu.Host = addr
	s := mustOpen(t, pu.String())
	ctx := context.Background()
	at := time.Now().UTC()
	if _, err := s.CreateEvents(ctx, newEvents("before", 3, at)); err != nil {
		t.Fatal(err)
	}

	p.cut()
	checks := []struct {
		name string
		do   func() error
	}{
		{"CreateEvents", func() error { _, err := s.CreateEvents(ctx, newEvents("during", 3, at)); return err }},
		{"FindEvents", func() error { _, _, err := s.FindEvents(ctx, odometer.EventFilter{Limit: 10}); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
	}
	for _, c := range checks {
		err := c.do()
		if got, want := odometer.ErrorCode(err), odometer.EUNAVAILABLE; got != want {
			t.Fatalf("%s with the database gone: %v, want code %s", c.name, err, want)
		}
		if msg := odometer.ErrorMessage(err); strings.Contains(msg, "127.0.0.1") || strings.Contains(strings.ToLower(msg), "select") {
			t.Fatalf("%s: the message shows the database: %q", c.name, msg)
		}
	}

	newProxy(t, addr, target)
	if _, err := s.CreateEvents(ctx, newEvents("after", 3, at)); err != nil {
		t.Fatalf("after the database came back: %v", err)
	}
	events, _, err := s.FindEvents(ctx, odometer.EventFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(events), 6; got != want {
		t.Fatalf("%d events stored, want %d (none of those sent while it was gone)", got, want)
	}
}
