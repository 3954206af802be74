// Package sqlite is the embedded store: one SQLite file in WAL mode, with
// every write fsync'd before it is acknowledged.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
	_ "github.com/ncruces/go-sqlite3/driver"
	"github.com/pressly/goose/v3"

	"github.com/odometer-dev/odometer"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite implementation of the odometer stores.
type Store struct {
	path string
	// write has one connection: SQLite has one writer, and queueing for it
	// in the pool rather than in SQLite's busy handler keeps it fair.
	write *sql.DB
	// read has several: readers never block the writer in WAL mode.
	read *sql.DB

	Now func() time.Time

	ingest *committer
	ids    *idIndex

	// aggLock admits one aggregation run at a time.
	aggLock chan struct{}
	// alertLock admits one alert evaluator at a time.
	alertLock chan struct{}
	// findKey looks a key up by its hash.
	findKey *sql.Stmt
}

var (
	_ odometer.EventStore       = (*Store)(nil)
	_ odometer.KeyStore         = (*Store)(nil)
	_ odometer.AggregationStore = (*Store)(nil)
)

// Options tune a store; the zero value is the default.
type Options struct {
	// Logger receives the id index's notes (rebuilds, damage found);
	// slog.Default() when nil.
	Logger *slog.Logger
	// IDFlushAt is how many new client ids are kept in memory before they
	// are written to a run of the id index (default 262,144).
	IDFlushAt int
	// NoIngest opens the store without its id index, for a command that
	// runs beside the server and stores no events: CreateEvents fails.
	NoIngest bool
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// Open opens (creating it if needed) and migrates the database at path.
// The id index lives beside it, in the folder path+".ids".
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenOptions(ctx, path, Options{})
}

// OpenOptions is Open with options.
func OpenOptions(ctx context.Context, path string, o Options) (*Store, error) {
	// synchronous=FULL: a commit returns once the WAL is fsync'd.
	pragmas := []string{
		"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)",
		"cache_size(-32768)", "mmap_size(2147483648)",
	}
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()

	write, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, write, mustSub(migrations, "migrations"))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if _, err := p.Up(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}

	rq := url.Values{}
	for _, p := range pragmas {
		if !strings.HasPrefix(p, "journal_mode") {
			rq.Add("_pragma", p)
		}
	}
	rq.Add("_pragma", "query_only(ON)")
	read, err := sql.Open("sqlite3", "file:"+path+"?"+rq.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)

	s := &Store{path: path, write: write, read: read, Now: time.Now, aggLock: make(chan struct{}, 1), alertLock: make(chan struct{}, 1)}
	if s.findKey, err = read.PrepareContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = ? AND revoked_at IS NULL`); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	var maxSeq int64
	if err := read.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&maxSeq); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if o.NoIngest {
		return s, nil
	}
	flushAt := defaultFlushAt
	if o.IDFlushAt > 0 {
		flushAt = o.IDFlushAt
	}
	if s.ids, err = openIDIndex(ctx, path, read, maxSeq, o.logger(), flushAt); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: id index: %w", path, err)
	}
	// Seqs go on after the index's: an event deleted at the end leaves
	// its seq in a run, and is not given again.
	s.ingest = newCommitter(s, s.ids.committed)
	return s, nil
}

// Close stops the committer, after the commit in progress, and closes the
// database.
func (s *Store) Close() error {
	if s.ingest != nil {
		s.ingest.close()
	}
	if s.ids != nil {
		s.ids.close()
	}
	if s.findKey != nil {
		s.findKey.Close()
	}
	err := s.read.Close()
	if e := s.write.Close(); err == nil {
		err = e
	}
	return err
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.read.PingContext(ctx)
}

func mustSub(f embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// storeError maps a driver error to a domain error: a full disk or an
// I/O error is EUNAVAILABLE; anything else is internal and shown to no
// client.
func storeError(op string, err error) error {
	if err == nil {
		return nil
	}
	// The driver returns a *sqlite3.Error, or a bare ErrorCode or
	// ExtendedErrorCode (as a COMMIT does on a full disk); errors.As finds
	// the primary code in each.
	var code sqlite3.ErrorCode
	if errors.As(err, &code) {
		switch code {
		case sqlite3.FULL, sqlite3.IOERR, sqlite3.CANTOPEN, sqlite3.READONLY:
			return &odometer.Error{Code: odometer.EUNAVAILABLE, Message: "The store cannot take writes now; nothing was stored. Try again later."}
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

var _ odometer.Store = (*Store)(nil)
