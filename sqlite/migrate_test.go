package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/odometer-dev/odometer"
)

// TestMigrateArrivalOrder: a file written with the tables keyed by
// customer (version 3) keeps every bucket and aggregation through
// migration 4, to rowid tables; the next run folds new events into the
// migrated rows; and migration 4 down keeps every row too.
func TestMigrateArrivalOrder(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v3.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, mustSub(migrations, "migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 3); err != nil {
		t.Fatal(err)
	}

	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	at := day.Add(10*time.Hour + 20*time.Minute)
	hour := at.Unix() / 3600
	type row struct {
		customer string
		value    float64
	}
	old := []row{{"cust_a", 5}, {"cust_b", 7}}
	for i, r := range old {
		seq := int64(i + 1)
		s := odometer.NewState(odometer.OpSum)
		s.Add(&odometer.Sample{Time: at.UnixMilli(), Seq: seq, Num: r.value, Dec: odometer.DecimalOf(r.value)})
		bucket := sections{"api.calls": odometer.EncodeSlots(hour, map[int64]odometer.State{odometer.SlotOf(at.UnixMilli()): s})}.encode()
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO events (seq, id, fp, event_type, customer_id, value, ts, received_at) VALUES (?, ?, 0, 'api.calls', ?, ?, ?, ?)`,
				[]any{seq, "evt_old" + r.customer, r.customer, r.value, at.UnixMilli(), at.UnixMilli()}},
			{`INSERT INTO buckets (customer_id, hour, data) VALUES (?, ?, ?)`, []any{r.customer, hour, bucket}},
			{`INSERT INTO aggregations (customer_id, period, period_key, period_start, period_end, updated_at, states)
				VALUES (?, 'daily', '20261102', ?, ?, ?, ?)`,
				[]any{r.customer, day.UnixMilli(), day.Add(24*time.Hour).UnixMilli() - 1, at.UnixMilli(),
					odometer.EncodeStates(map[string]odometer.State{"api.calls": s})}},
		} {
			if _, err := db.ExecContext(ctx, q.sql, q.args...); err != nil {
				t.Fatalf("%s: %v", q.sql, err)
			}
		}
	}
	// What a run of version 3 recorded beside its rows.
	if _, err := db.ExecContext(ctx, `UPDATE meta SET value = 2 WHERE key IN ('watermark', 'run_to')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('newest_key:daily', '20261102'), ('bucket_max_hour', ?)`, hour); err != nil {
		t.Fatal(err)
	}
	// cust_b's period is complete, published and delivered: every column
	// with a value of its own, so that a column copied into another shows.
	if _, err := db.ExecContext(ctx, `UPDATE aggregations SET complete = 1, revision = 3,
		published = '{"events":{"api.calls":7},"eventCounts":{"api.calls":1}}', wh_delivered = 1, wh_attempts = 2,
		wh_delivered_at = 111, wh_last_error = 'boom', wh_last_attempt_at = 222, wh_dry_run = 0 WHERE customer_id = 'cust_b'`); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, db, true)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkLayout(t, s.read, false)
	for _, r := range old {
		aggs, _, err := s.FindAggregations(ctx, odometer.AggregationFilter{CustomerID: r.customer, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(aggs) != 1 || aggs[0].Period != odometer.Daily || odometer.Value(odometer.OpSum, aggs[0].States["api.calls"]) != r.value {
			t.Fatalf("%s after migration: %+v, want one daily aggregation of %v", r.customer, aggs, r.value)
		}
		buckets, pending, err := s.FindUsage(ctx, r.customer, "api.calls", "api.calls", hour, hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(buckets) != 1 || len(buckets[0].Slots) != 1 || len(pending) != 0 {
			t.Fatalf("%s after migration: %d buckets and %d pending events, want 1 with 1 slot and 0", r.customer, len(buckets), len(pending))
		}
		for _, st := range buckets[0].Slots {
			if odometer.Value(odometer.OpSum, st) != r.value {
				t.Fatalf("%s bucket after migration holds %v, want %v", r.customer, odometer.Value(odometer.OpSum, st), r.value)
			}
		}
	}

	for customer, want := range map[string]odometer.Aggregation{
		"cust_a": {},
		"cust_b": {Complete: true, Revision: 3, Published: &odometer.Values{Events: map[string]float64{"api.calls": 7}, EventCounts: map[string]int64{"api.calls": 1}},
			Webhook: odometer.WebhookStatus{Delivered: true, Attempts: 2, DeliveredAt: ptr(fromMS(111)), LastError: "boom", LastAttemptAt: ptr(fromMS(222))}},
	} {
		aggs, _, err := s.FindAggregations(ctx, odometer.AggregationFilter{CustomerID: customer, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		a := aggs[0]
		if a.Complete != want.Complete || a.Revision != want.Revision || a.Dirty || !reflect.DeepEqual(a.Published, want.Published) ||
			!reflect.DeepEqual(a.Webhook, want.Webhook) || !a.PeriodStart.Equal(day) || a.PeriodKey != "20261102" {
			t.Fatalf("%s after migration: %+v, want complete %v, revision %d, published %+v, webhook %+v", customer, a,
				want.Complete, want.Revision, want.Published, want.Webhook)
		}
	}

	// One more event in the same slot for cust_a: the run merges it into
	// the migrated bucket and aggregation.
	if _, err := s.CreateEvents(ctx, []odometer.Event{{ID: "evt_new", EventType: "api.calls", CustomerID: "cust_a", Value: 10,
		Time: at.Add(time.Minute), ReceivedAt: at.Add(time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	cfg, err := odometer.ParseConfig("test", []byte(`{"periods": ["daily"], "events": {"api.calls": {"op": "sum"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	agg := &odometer.Aggregator{Store: s, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return at.Add(time.Hour) }}
	res, err := agg.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.EventsProcessed != 1 || res.AggregationsUpdated != 1 || res.AggregationsCreated != 0 {
		t.Fatalf("run after migration: %+v, want 1 event into 1 existing aggregation", res)
	}
	for customer, want := range map[string]float64{"cust_a": 15, "cust_b": 7} {
		aggs, _, err := s.FindAggregations(ctx, odometer.AggregationFilter{CustomerID: customer, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(aggs) != 1 || odometer.Value(odometer.OpSum, aggs[0].States["api.calls"]) != want {
			t.Fatalf("%s after the run: %+v, want one daily aggregation of %v", customer, aggs, want)
		}
		buckets, _, err := s.FindUsage(ctx, customer, "api.calls", "api.calls", hour, hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(buckets) != 1 || len(buckets[0].Slots) != 1 {
			t.Fatalf("%s after the run: %d buckets, want 1 with 1 slot", customer, len(buckets))
		}
		for _, st := range buckets[0].Slots {
			if odometer.Value(odometer.OpSum, st) != want {
				t.Fatalf("%s bucket after the run holds %v, want %v", customer, odometer.Value(odometer.OpSum, st), want)
			}
		}
	}

	// And back: down to version 3 (migration 4 down, and any later one
	// first) keeps every row too.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if p, err = goose.NewProvider(goose.DialectSQLite3, db, mustSub(migrations, "migrations")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, db, true)
	var buckets, aggs int
	var total, bucketTotal float64
	if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM buckets), (SELECT count(*) FROM aggregations)`).Scan(&buckets, &aggs); err != nil {
		t.Fatal(err)
	}
	brows, err := db.QueryContext(ctx, `SELECT hour, data FROM buckets`)
	if err != nil {
		t.Fatal(err)
	}
	for brows.Next() {
		var h int64
		var b []byte
		if err := brows.Scan(&h, &b); err != nil {
			t.Fatal(err)
		}
		secs, err := decodeSections(b)
		if err != nil {
			t.Fatal(err)
		}
		slots := map[int64]odometer.State{}
		if err := odometer.DecodeSlots(h, secs["api.calls"], slots); err != nil {
			t.Fatal(err)
		}
		for _, st := range slots {
			bucketTotal += odometer.Value(odometer.OpSum, st)
		}
	}
	brows.Close()
	rows, err := db.QueryContext(ctx, `SELECT states FROM aggregations ORDER BY customer_id, period, period_key`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		st, err := odometer.DecodeStates(b)
		if err != nil {
			t.Fatal(err)
		}
		total += odometer.Value(odometer.OpSum, st["api.calls"])
	}
	rows.Close()
	if buckets != 2 || aggs != 2 || total != 22 || bucketTotal != 22 {
		t.Fatalf("after migration 4 down: %d buckets summing to %v and %d aggregations summing to %v, want 2 and 22 each",
			buckets, bucketTotal, aggs, total)
	}
}

func ptr[T any](v T) *T { return &v }

// checkLayout fails t unless buckets and aggregations are WITHOUT ROWID
// tables (version 3, keyed by customer) when old is set, and rowid tables
// (version 4) when it is not, each with the indexes its queries use.
func checkLayout(t *testing.T, db *sql.DB, old bool) {
	t.Helper()
	for _, table := range []string{"buckets", "aggregations"} {
		var wr bool
		if err := db.QueryRow(`SELECT wr FROM pragma_table_list WHERE name = ?`, table).Scan(&wr); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if wr != old {
			t.Fatalf("%s is WITHOUT ROWID: %v, want %v", table, wr, old)
		}
	}
	want := map[string]string{
		"aggregations_start": "period_start,customer_id,period,period_key",
		"aggregations_due":   "period_end",
	}
	if old {
		want["aggregations_start"] = "period_start,customer_id,period"
	} else {
		want["sqlite_autoindex_aggregations_1"] = "customer_id,period,period_key"
		want["sqlite_autoindex_buckets_1"] = "customer_id,hour"
	}
	for index, cols := range want {
		var got sql.NullString
		if err := db.QueryRow(`SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info(?) ORDER BY seqno)`, index).Scan(&got); err != nil {
			t.Fatalf("%s: %v", index, err)
		}
		if got.String != cols {
			t.Fatalf("index %s has columns %q, want %q", index, got.String, cols)
		}
	}
}

// TestMigrateCustomers: migration 6 adds the customers table to a file of
// any version and takes it away again, and nothing else.
func TestMigrateCustomers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "odometer.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 13, 10, 0, 0, 0, time.UTC)
	if _, err := s.CreateEvents(ctx, []odometer.Event{{ID: "e1", ClientID: true, EventType: "api.calls", CustomerID: "cust_ev", Value: 1, Time: now, ReceivedAt: now}}); err != nil {
		t.Fatal(err)
	}
	c := &odometer.Customer{ID: "cust_p", Name: "Profile", UpdatedAt: now}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCustomer(ctx, c); err != nil {
		t.Fatal(err)
	}
	s.Close()

	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, mustSub(migrations, "migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 4); err != nil {
		t.Fatal(err)
	}
	var tables, events int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM sqlite_schema WHERE name = 'customers'), (SELECT count(*) FROM events)`).Scan(&tables, &events); err != nil {
		t.Fatal(err)
	}
	if tables != 0 || events != 1 {
		t.Fatalf("after migration 6 down: %d customers tables, %d events; want 0 and 1", tables, events)
	}
	db.Close()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.FindCustomer(ctx, "cust_ev")
	if err != nil || got.HasProfile() || got.FirstEventAt == nil || !got.FirstEventAt.Equal(now) {
		t.Fatalf("after migration 6 up again: %+v, %v", got, err)
	}
	if _, err := s.FindCustomer(ctx, "cust_p"); odometer.ErrorCode(err) != odometer.ENOTFOUND {
		t.Fatalf("the profile survived its table: %v", err)
	}
}
