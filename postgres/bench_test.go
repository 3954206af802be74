package postgres_test

// Ingest benchmarks on PostgreSQL, each beside the baseline of a raw pgx
// CopyFrom of the same kind of rows into the same table, in one run:
//
//	ODOMETER_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test ./postgres -run '^$' -bench . -benchtime 200x -count 3
//
// The table first holds ODOMETER_BENCH_PG_PREFILL events (default one
// million), with random UUIDv4 client ids. Each op stores batches of 1000
// events, committed, both ways in turn (see interleave), so that the ratio
// holds even on a busy machine. See docs/POSTGRES.md for the figures.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
	"github.com/odometer-dev/odometer/postgres"
	"github.com/odometer-dev/odometer/storetest"
)

const (
	benchBatch     = 1000
	benchCustomers = 10_000
)

var benchTypes = []string{"api.calls", "storage.bytes", "response.time.ms", "compute.seconds",
	"bandwidth.bytes", "tokens.used", "jobs.run"}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randN(n int) int {
	var b [8]byte
	rand.Read(b[:])
	return int(binary.LittleEndian.Uint64(b[:]) % uint64(n))
}

// benchEvents makes n events of the workload, received at now.
func benchEvents(n int, now time.Time) []odometer.Event {
	events := make([]odometer.Event, n)
	for i := range events {
		events[i] = odometer.Event{ID: newUUID(), ClientID: true, EventType: benchTypes[randN(len(benchTypes))],
			CustomerID: fmt.Sprintf("cust_%05d", randN(benchCustomers)), Value: float64(1 + randN(1000)), Time: now, ReceivedAt: now}
	}
	return events
}

var eventColumns = []string{"id", "client", "fp", "event_type", "customer_id", "value", "metadata", "ts", "received_at"}

// copyRows are events as rows of the events table.
func copyRows(events []odometer.Event) [][]any {
	rows := make([][]any, len(events))
	for i, e := range events {
		rows[i] = []any{e.ID, true, e.Fingerprint(), e.EventType, e.CustomerID, e.Value, e.Metadata,
			e.Time.Truncate(time.Millisecond), e.ReceivedAt.Truncate(time.Millisecond)}
	}
	return rows
}

func prefillSize(tb testing.TB) int {
	v := os.Getenv("ODOMETER_BENCH_PG_PREFILL")
	if v == "" {
		return 1_000_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		tb.Fatalf("ODOMETER_BENCH_PG_PREFILL=%q: want a number of events", v)
	}
	return n
}

// benchDB is a schema with the store's tables, prefilled, for the
// benchmarks of one run.
type benchDB struct {
	url  string
	conn *pgx.Conn
}

// openBenchDB creates and prefills the schema, dropped when b ends.
func openBenchDB(b *testing.B) *benchDB {
	u := storetest.PostgresSchema(b)
	s, err := postgres.Open(context.Background(), u)
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(ctx) })
	start := time.Now()
	n := prefillSize(b)
	for done := 0; done < n; {
		k := min(50_000, n-done)
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, pgx.CopyFromRows(copyRows(benchEvents(k, time.Now().UTC())))); err != nil {
			b.Fatal(err)
		}
		done += k
	}
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE events`); err != nil {
		b.Fatal(err)
	}
	b.Logf("prefilled %d events in %v", n, time.Since(start).Round(time.Second))
	return &benchDB{url: u, conn: conn}
}

// batches makes n batches of the workload.
func batches(n int) [][]odometer.Event {
	out := make([][]odometer.Event, n)
	now := time.Now().UTC()
	for i := range out {
		out[i] = benchEvents(benchBatch, now)
	}
	return out
}

// parallel runs op(i) for i in 0..n-1 on clients goroutines.
func parallel(n, clients int, op func(i int) error) error {
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	errs := make([]error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := op(i); err != nil {
					errs[c] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// interleave times, in each op, a raw CopyFrom of batches to the events
// table and then run(i, batches) storing as many batches another way,
// and reports the rates of both and their ratio. Taking turns, both see
// the same table and the same load on the machine.
func interleave(b *testing.B, db *benchDB, per int, run func(evs [][]odometer.Event) error) {
	ctx := context.Background()
	copies := make([][][]any, b.N*per)
	for i, e := range batches(b.N * per) {
		copies[i] = copyRows(e)
	}
	evs := batches(b.N * per)
	var copyTime, runTime time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		for _, rows := range copies[i*per : (i+1)*per] {
			if _, err := db.conn.CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, pgx.CopyFromRows(rows)); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		if err := run(evs[i*per : (i+1)*per]); err != nil {
			b.Fatal(err)
		}
		copyTime, runTime = copyTime+t1.Sub(t0), runTime+time.Since(t1)
	}
	b.StopTimer()
	events := float64(b.N * per * benchBatch)
	b.ReportMetric(events/runTime.Seconds(), "events/s")
	b.ReportMetric(events/copyTime.Seconds(), "copy-events/s")
	b.ReportMetric(copyTime.Seconds()/runTime.Seconds(), "x-copy")
}

// BenchmarkIngest compares ways of storing batches of 1000 events with a
// raw CopyFrom of the same kind of rows into the same table: the store
// directly and over HTTP, from 1 and 4 concurrent clients (one op stores
// one batch per client), and the two insert statements the store could
// use.
func BenchmarkIngest(b *testing.B) {
	db := openBenchDB(b)
	ctx := context.Background()
	store, err := postgres.Open(ctx, db.url)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("store/clients=%d", clients), func(b *testing.B) {
			interleave(b, db, clients, func(evs [][]odometer.Event) error {
				return parallel(len(evs), clients, func(i int) error {
					_, err := store.CreateEvents(ctx, evs[i])
					return err
				})
			})
		})
	}

	// Two replicas on the same database: two stores, each with its pool
	// and its group committer, the clients split between them; beside
	// store/clients=4, which is one replica with as many clients.
	store2, err := postgres.Open(ctx, db.url)
	if err != nil {
		b.Fatal(err)
	}
	defer store2.Close()
	b.Run("replicas=2/clients=4", func(b *testing.B) {
		stores := []*postgres.Store{store, store2}
		interleave(b, db, 4, func(evs [][]odometer.Event) error {
			return parallel(len(evs), 4, func(i int) error {
				_, err := stores[i%2].CreateEvents(ctx, evs[i])
				return err
			})
		})
	})

	cfg, err := odometer.ParseConfig("bench", []byte(`{"periods": ["daily"], "events": {`+
		`"api.calls": {"op": "sum"}, "storage.bytes": {"op": "max"}, "response.time.ms": {"op": "avg"}, "compute.seconds": {"op": "sum"},`+
		`"bandwidth.bytes": {"op": "sum"}, "tokens.used": {"op": "sum"}, "jobs.run": {"op": "count"}}, "webhooks": []}`))
	if err != nil {
		b.Fatal(err)
	}
	secret, key := odometer.NewAPIKey(odometer.ScopeIngest, "", "bench", time.Now())
	if err := store.CreateKey(ctx, key); err != nil {
		b.Fatal(err)
	}
	srv := &odohttp.Server{Events: store, Keys: store, Aggs: store, Deliveries: store,
		Config: func() *odometer.Config { return cfg }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("http/clients=%d", clients), func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: clients}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			interleave(b, db, clients, func(evs [][]odometer.Event) error {
				bodies := make([][]byte, len(evs))
				for i := range evs {
					bodies[i] = batchBody(evs[i])
				}
				return parallel(len(evs), clients, func(i int) error {
					req, err := http.NewRequest("POST", ts.URL+"/usagebatch", bytes.NewReader(bodies[i]))
					if err != nil {
						return err
					}
					req.Header.Set("x-apikey", secret)
					resp, err := c.Do(req)
					if err != nil {
						return err
					}
					msg, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						return fmt.Errorf("POST /usagebatch: %d %s", resp.StatusCode, msg)
					}
					return nil
				})
			})
		})
	}

	// The two ways of inserting a batch with deduplication that the store
	// could use, as the store runs them (in a transaction, under the ingest
	// lock, returning the seqs): a multi-row INSERT from arrays, and a
	// CopyFrom into a temporary table followed by one INSERT ... SELECT.
	b.Run("insert/unnest", func(b *testing.B) {
		interleave(b, db, 1, func(evs [][]odometer.Event) error {
			tx, err := db.conn.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			var a struct {
				ids, types, customers []string
				client                []bool
				fps                   []int64
				values                []float64
				metadata              [][]byte
				ts                    []time.Time
			}
			for _, e := range evs[0] {
				a.ids, a.types, a.customers = append(a.ids, e.ID), append(a.types, e.EventType), append(a.customers, e.CustomerID)
				a.client, a.fps, a.values = append(a.client, true), append(a.fps, e.Fingerprint()), append(a.values, e.Value)
				a.metadata, a.ts = append(a.metadata, e.Metadata), append(a.ts, e.Time.Truncate(time.Millisecond))
			}
			bt := &pgx.Batch{}
			bt.Queue(`SELECT pg_advisory_xact_lock(1)`)
			bt.Queue(`INSERT INTO events (id, client, fp, event_type, customer_id, value, metadata, ts, received_at)
				SELECT * FROM unnest($1::text[], $2::boolean[], $3::bigint[], $4::text[], $5::text[], $6::float8[], $7::bytea[],
					$8::timestamptz[], $8::timestamptz[])
				ON CONFLICT (id) WHERE client DO NOTHING RETURNING seq`,
				a.ids, a.client, a.fps, a.types, a.customers, a.values, a.metadata, a.ts)
			if err := tx.SendBatch(ctx, bt).Close(); err != nil {
				return err
			}
			return tx.Commit(ctx)
		})
	})

	b.Run("insert/copy-staging", func(b *testing.B) {
		if _, err := db.conn.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS events_in (id text, client boolean, fp bigint, event_type text,
			customer_id text, value float8, metadata bytea, ts timestamptz, received_at timestamptz) ON COMMIT DELETE ROWS`); err != nil {
			b.Fatal(err)
		}
		interleave(b, db, 1, func(evs [][]odometer.Event) error {
			tx, err := db.conn.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(1)`); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events_in"}, eventColumns, pgx.CopyFromRows(copyRows(evs[0]))); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `INSERT INTO events (id, client, fp, event_type, customer_id, value, metadata, ts, received_at)
				SELECT * FROM events_in ON CONFLICT (id) WHERE client DO NOTHING RETURNING seq`)
			if err != nil {
				return err
			}
			for rows.Next() {
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			return tx.Commit(ctx)
		})
	})
}

// batchBody is a POST /usagebatch body of events.
func batchBody(events []odometer.Event) []byte {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, e := range events {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"eventType":%q,"customerId":%q,"value":%g,"id":%q}`, e.EventType, e.CustomerID, e.Value, e.ID)
	}
	buf.WriteByte(']')
	return buf.Bytes()
}
