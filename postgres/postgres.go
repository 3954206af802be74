// Package postgres is the store for several replicas: one PostgreSQL
// database (or one schema of it) that every replica shares.
//
// It keeps the SQLite store's behaviour, with three things that only a
// shared database needs:
//
//   - Ingest commits hold a transaction-level advisory lock, so that the
//     sequence numbers of events become visible in order and the
//     aggregation's watermark never passes an event still to commit. Each
//     replica groups concurrent requests into one transaction, so the lock
//     is taken once per group, not per request.
//   - Aggregation runs hold a session-level advisory lock on a connection of
//     their own: one run at a time over all replicas, and a replica that dies
//     loses it when its connection closes.
//   - Deliveries are claimed with FOR UPDATE SKIP LOCKED, so that replicas
//     send disjoint deliveries.
//
// Migrations run at Open under goose's PostgreSQL session lock: replicas
// that start together migrate once. See docs/POSTGRES.md.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/odometer-dev/odometer"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the PostgreSQL implementation of the odometer stores.
type Store struct {
	pool *pgxpool.Pool
	// schema is where the tables are; the advisory lock keys derive from
	// it, so that stores in different schemas of one database do not
	// exclude each other.
	schema    string
	ingestKey int64
	aggKey    int64
	alertKey  int64

	ingest *committer
	// aggSlot lets one LockAggregation of this process at a time wait on
	// the database, so that waiters do not each hold a connection.
	aggSlot chan struct{}
}

var _ odometer.Store = (*Store)(nil)

// Defaults applied unless the URL sets them.
const (
	// defaultMaxConns: ingest holds one connection per group commit, an
	// aggregation run holds two or three, and readers share the rest.
	defaultMaxConns = 16
	// TCP keepalive, on both ends: a replica cut off by the network
	// loses its session, and with it its advisory locks, within about
	// keepIdle + keepCount*keepInterval (25 s).
	keepIdle     = 10 * time.Second
	keepInterval = 5 * time.Second
	keepCount    = 3
	// userTimeout bounds how long the server keeps a session whose
	// written data goes unacknowledged.
	userTimeout = 30 * time.Second
)

// Open connects to the database at url (postgres://...), and creates or
// migrates the tables in the connection's current schema. Pool and
// connection settings can be given in the URL (pool_max_conns,
// search_path, application_name, ...).
func Open(ctx context.Context, url string) (*Store, error) {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New("open postgres: the URL is not valid")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("open postgres: the URL is not valid")
	}
	where := fmt.Sprintf("postgres %s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	if _, ok := cc.RuntimeParams["pool_max_conns"]; !ok {
		cfg.MaxConns = defaultMaxConns
	}
	params := cfg.ConnConfig.RuntimeParams
	for k, v := range map[string]string{
		"application_name":        "odometer",
		"tcp_keepalives_idle":     fmt.Sprint(keepIdle.Seconds()),
		"tcp_keepalives_interval": fmt.Sprint(keepInterval.Seconds()),
		"tcp_keepalives_count":    fmt.Sprint(keepCount),
		"tcp_user_timeout":        fmt.Sprint(userTimeout.Milliseconds()),
	} {
		if _, ok := params[k]; !ok {
			params[k] = v
		}
	}
	dialer := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: keepIdle, Interval: keepInterval, Count: keepCount}}
	if cfg.ConnConfig.ConnectTimeout > 0 {
		dialer.Timeout = cfg.ConnConfig.ConnectTimeout
	}
	cfg.ConnConfig.DialFunc = dialer.DialContext

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", where, err)
	}
	s := &Store{pool: pool, aggSlot: make(chan struct{}, 1)}
	var schema *string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: %w", where, err)
	}
	if schema == nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: no schema of the search_path exists", where)
	}
	s.schema = *schema
	s.ingestKey, s.aggKey, s.alertKey = lockKey(s.schema, "ingest"), lockKey(s.schema, "aggregate"), lockKey(s.schema, "alerts")
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate %s: %w", where, err)
	}
	s.ingest = newCommitter(s)
	return s, nil
}

// migrate applies the migrations, once over all replicas: goose holds a
// session-level advisory lock while it runs them.
func (s *Store) migrate(ctx context.Context) error {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	// Retry the lock every second for ten minutes: a replica waits for
	// another's migration rather than fail.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockKey(s.schema, "migrate")), lock.WithLockTimeout(1, 600))
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"), goose.WithSessionLocker(locker))
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// Close stops the committer, after the commit in progress, and closes the
// connections. It waits for connections in use to be returned.
func (s *Store) Close() error {
	if s.ingest != nil {
		s.ingest.close()
	}
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return storeError("ping", s.pool.Ping(ctx))
}

// lockKey is the advisory lock key of one purpose in one schema.
func lockKey(schema, purpose string) int64 {
	h := fnv.New64a()
	h.Write([]byte("odometer\x00" + purpose + "\x00" + schema))
	return int64(h.Sum64())
}

func mustSub(f embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

var errUnavailable = &odometer.Error{Code: odometer.EUNAVAILABLE, Message: "The store cannot take writes now; nothing was stored. Try again later."}

// storeError maps a driver error to a domain error: a lost connection, a
// full disk, or a server that is shutting down or read-only is
// EUNAVAILABLE; text the database cannot hold is EINVALID; anything else
// is internal and shown to no client.
func storeError(op string, err error) error {
	if err == nil {
		return nil
	}
	var oe *odometer.Error
	if errors.As(err, &oe) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection exception; 53: insufficient resources (53100 disk
		// full); 58: system error (I/O); 57P0x: the server is shutting
		// down or starting; 25006: a read-only transaction, on a standby
		// or during a failover.
		switch code := pe.Code; {
		case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"), strings.HasPrefix(code, "58"),
			code == "57P01", code == "57P02", code == "57P03", code == "25006":
			return errUnavailable
		case code == "22021", code == "22P05": // bad UTF-8, or NUL
			return odometer.Errorf(odometer.EINVALID, "Text must be valid UTF-8 without NUL characters.")
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	if connectionLost(err) {
		return errUnavailable
	}
	return fmt.Errorf("%s: %w", op, err)
}

// connectionLost reports whether err is a network failure, as opposed to
// an error of the server or of the program.
func connectionLost(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || pgconn.SafeToRetry(err)
}

// ms truncates t to the millisecond, the precision of every stored time.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

func nullMS(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := ms(*t)
	return &v
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

// args numbers query parameters.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return fmt.Sprintf("$%d", len(*a))
}
