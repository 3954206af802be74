package sqlite_test

// The customer reads on a large store: ODOMETER_AGG_EVENTS events (default
// 10 million) of 10,000 customers, aggregated, plus a backlog of
// ODOMETER_CUSTOMER_BACKLOG events (default 100,000: what a 5-minute
// aggregation interval leaves at 330 events a second) not yet folded in,
// and 1,000 profiles. Beside them, the query they avoid: a customer list
// from the events table, which has no index by customer. See
// docs/PERFORMANCE.md.

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/sqlite"
)

func BenchmarkCustomers(b *testing.B) {
	n := aggEventCount()
	backlog := 100_000
	if v, err := strconv.Atoi(os.Getenv("ODOMETER_CUSTOMER_BACKLOG")); err == nil && v >= 0 {
		backlog = v
	}
	cfg := aggConfig(b)
	now := aggDay.Add(36*time.Hour + 30*time.Minute)
	ctx := context.Background()
	var s *sqlite.Store
	var path string
	if db := os.Getenv("ODOMETER_CUSTOMER_DB"); db != "" {
		// A store built by an earlier run, kept: skip the setup.
		path = filepath.Join(b.TempDir(), "agg.db")
		copyFile(b, db, path)
		var err error
		if s, err = sqlite.Open(ctx, path); err != nil {
			b.Fatal(err)
		}
		backlog, n = 0, 0
	} else {
		s, path = openAggCopy(b, n)
	}
	defer s.Close()
	agg := &odometer.Aggregator{Store: s, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return now }}
	if n > 0 {
		start := time.Now()
		if _, err := agg.Run(ctx); err != nil {
			b.Fatal(err)
		}
		b.Logf("aggregated %d events in %s", n, time.Since(start).Round(time.Second))
	}
	r := rand.New(rand.NewPCG(5, 6))
	for done := 0; done < backlog; {
		k := min(1000, backlog-done)
		evs := make([]odometer.Event, k)
		for j := range evs {
			t := now.Add(-time.Duration(r.Int64N(int64(5 * time.Minute))))
			evs[j] = odometer.Event{ID: odometer.NewID("evt_"), EventType: aggTypes[r.IntN(len(aggTypes))],
				CustomerID: fmt.Sprintf("cust_%05d", r.IntN(10_500)), Value: 1, Time: t, ReceivedAt: t}
		}
		if _, err := s.CreateEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
		done += k
	}
	for i := 0; i < 1000 && n > 0; i++ {
		c := &odometer.Customer{ID: fmt.Sprintf("cust_%05d", i*10), Name: fmt.Sprintf("Customer %d", i), Timezone: "Asia/Kolkata"}
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
		c.UpdatedAt = now
		if err := s.PutCustomer(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("store %s: %d events aggregated, %d in the backlog, 1,000 profiles", path, n, backlog)

	page := func(b *testing.B, f odometer.CustomerFilter, want int) {
		for i := 0; i < b.N; i++ {
			list, _, err := s.FindCustomers(ctx, f)
			if err != nil {
				b.Fatal(err)
			}
			if len(list) != want {
				b.Fatalf("%d customers, want %d", len(list), want)
			}
		}
	}
	// What the listing avoids: the first page from the events table.
	b.Run("baseline-events-distinct-100", func(b *testing.B) {
		db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=query_only(ON)&_pragma=cache_size(-32768)&_pragma=mmap_size(2147483648)")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		for i := 0; i < b.N; i++ {
			rows, err := db.Query(`SELECT DISTINCT customer_id FROM events ORDER BY customer_id LIMIT 101`)
			if err != nil {
				b.Fatal(err)
			}
			k := 0
			for rows.Next() {
				k++
			}
			rows.Close()
			if k != 101 {
				b.Fatalf("%d customers", k)
			}
		}
	})
	b.Run("list-first-page-100", func(b *testing.B) { page(b, odometer.CustomerFilter{Limit: 100}, 100) })
	b.Run("list-middle-page-100", func(b *testing.B) {
		page(b, odometer.CustomerFilter{Limit: 100, Cursor: odometer.EncodeCustomerCursor("cust_05000")}, 100)
	})
	b.Run("list-q-prefix", func(b *testing.B) { page(b, odometer.CustomerFilter{Limit: 100, Q: "cust_0712"}, 10) })
	b.Run("list-q-name", func(b *testing.B) { page(b, odometer.CustomerFilter{Limit: 100, Q: "Customer 99"}, 11) })
	b.Run("find-customer", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			c, err := s.FindCustomer(ctx, fmt.Sprintf("cust_%05d", i%10_000))
			if err != nil || c.FirstEventAt == nil {
				b.Fatalf("%+v, %v", c, err)
			}
		}
	})
	b.Run("current-cycle", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			c, err := s.FindCustomer(ctx, fmt.Sprintf("cust_%05d", i%10_000))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := odometer.CurrentCycle(ctx, s, cfg, c, time.UTC, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
