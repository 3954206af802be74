package ingestbench

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/sqlite"
)

// bigVersion changes the cached stores of BigStore when their generator
// changes.
const bigVersion = "1"

// BigCacheDir is where BigStore keeps its stores: $ODOMETER_BENCH_CACHE,
// or a folder of os.TempDir(), named after the migrations.
func BigCacheDir(tb testing.TB) string {
	root := os.Getenv("ODOMETER_BENCH_CACHE")
	if root == "" {
		root = os.TempDir()
	}
	return filepath.Join(root, "odometer-bigbench-"+hashMigrations(tb, "big"+bigVersion))
}

// BigStore returns the cached store of n events with random client ids
// (the workload of NewEvents, spread over the last 30 days), building it
// once per machine: raw multi-row INSERTs in large transactions, without
// fsync, then a checkpoint. The store's own id index is not built here:
// the first sqlite.Open builds it, as it would for an upgraded store.
func BigStore(tb testing.TB, n int) string {
	dir := BigCacheDir(tb)
	path := filepath.Join(dir, fmt.Sprintf("events-%d.db", n))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tmp := path + ".building"
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	os.RemoveAll(tmp + ".ids")
	start := time.Now()
	// The schema, through the store's migrations.
	s, err := sqlite.Open(context.Background(), tmp)
	if err != nil {
		tb.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite3", "file:"+tmp+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=cache_size(-65536)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	const per = 100
	stmt := "INSERT INTO events (seq, id, idh, fp, event_type, customer_id, value, metadata, ts, received_at) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,NULL,?,?),", per), ",")
	r := rand.New(rand.NewPCG(uint64(n), 14))
	end := time.Now().UTC().Truncate(time.Hour)
	span := int64(30 * 24 * time.Hour / time.Millisecond)
	args := make([]any, 0, per*9)
	var seq int64
	var idb [16]byte
	var ids [36]byte
	for seq < int64(n) {
		tx, err := db.Begin()
		if err != nil {
			tb.Fatal(err)
		}
		ins, err := tx.Prepare(stmt)
		if err != nil {
			tb.Fatal(err)
		}
		for k := 0; k < 1000 && seq < int64(n); k++ {
			args = args[:0]
			for i := 0; i < per && seq < int64(n); i++ {
				seq++
				for j := 0; j < 16; j += 8 {
					v := r.Uint64()
					for b := 0; b < 8; b++ {
						idb[j+b] = byte(v >> (8 * b))
					}
				}
				idb[6] = idb[6]&0x0f | 0x40
				idb[8] = idb[8]&0x3f | 0x80
				hex.Encode(ids[0:8], idb[0:4])
				ids[8] = '-'
				hex.Encode(ids[9:13], idb[4:6])
				ids[13] = '-'
				hex.Encode(ids[14:18], idb[6:8])
				ids[18] = '-'
				hex.Encode(ids[19:23], idb[8:10])
				ids[23] = '-'
				hex.Encode(ids[24:], idb[10:])
				ts := end.UnixMilli() - span + seq*span/int64(n)
				e := odometer.Event{ID: string(ids[:]), ClientID: true, EventType: Types[r.IntN(len(Types))],
					CustomerID: "cust_" + leftPad(r.IntN(Customers)), Value: float64(1 + r.IntN(1000))}
				args = append(args, seq, e.ID, odometer.IDHash(e.ID), e.Fingerprint(), e.EventType, e.CustomerID, e.Value, ts, ts)
			}
			if len(args) < per*9 {
				// The last statement of a size that is not a multiple.
				q := "INSERT INTO events (seq, id, idh, fp, event_type, customer_id, value, metadata, ts, received_at) VALUES " +
					strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,NULL,?,?),", len(args)/9), ",")
				if _, err := tx.Exec(q, args...); err != nil {
					tb.Fatal(err)
				}
				continue
			}
			if _, err := ins.Exec(args...); err != nil {
				tb.Fatal(err)
			}
		}
		ins.Close()
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
		if seq%10_000_000 == 0 {
			tb.Logf("%d events, %s", seq, time.Since(start).Round(time.Second))
		}
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		tb.Fatal(err)
	}
	db.Close()
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	// The index of the empty store: the first Open of the store builds
	// the real one.
	os.RemoveAll(tmp + ".ids")
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("built %s: %d events in %s", path, n, time.Since(start).Round(time.Second))
	return path
}

func leftPad(v int) string {
	s := strconv.Itoa(v)
	return strings.Repeat("0", 5-len(s)) + s
}
