package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odometer-dev/odometer"
)

// committer stores the groups of the group commit, so that concurrent
// requests share one commit and one turn of the ingest lock.
type committer struct {
	*odometer.GroupCommit
	s *Store
}

// commitTimeout bounds one group's commit, waits for the ingest lock
// included, so that a database cut off by the network fails requests
// rather than hold them.
const commitTimeout = time.Minute

func newCommitter(s *Store) *committer {
	c := &committer{s: s}
	c.GroupCommit = odometer.NewGroupCommit(c.commit)
	return c
}

func (c *committer) close() { c.GroupCommit.Close() }

// CreateEvents implements odometer.EventStore.
func (s *Store) CreateEvents(ctx context.Context, events []odometer.Event) ([]bool, error) {
	return s.ingest.Submit(ctx, events)
}

// commit stores a group in one transaction, settled by
// odometer.SettleGroup. A request with a conflicting id fails alone; a
// store error fails every request of the group, and none is acknowledged.
//
// The transaction takes the ingest lock before it looks ids up: commits of
// events go one at a time over all replicas, so that seq order is commit
// order and no id is inserted by another between the look-up and the
// insert. (A delete does not take the lock: an id found and then deleted
// before the commit is answered as the duplicate it was when found.)
func (c *committer) commit(group []*odometer.IngestRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	err := c.try(ctx, group)
	if errors.Is(err, context.DeadlineExceeded) {
		err = errUnavailable
	}
	if err != nil {
		for _, r := range group {
			if r.Err == nil {
				r.Err, r.Dup = err, nil
			}
		}
	}
}

func (c *committer) try(ctx context.Context, group []*odometer.IngestRequest) error {
	s := c.s
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return storeError("insert events", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return storeError("insert events", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.ingestKey); err != nil {
		return storeError("lock ingest", err)
	}
	if err := odometer.SettleGroup(group, &ingestTx{ctx: ctx, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return storeError("commit", err)
	}
	return nil
}

// ingestTx is the odometer.IngestTx of one commit.
type ingestTx struct {
	ctx context.Context
	tx  pgx.Tx
}

// Stored implements odometer.IngestTx, through the unique index of the
// client ids.
func (t *ingestTx) Stored(ids []string) (map[string]odometer.StoredEvent, error) {
	rows, err := t.tx.Query(t.ctx, `SELECT id, fp, seq FROM events WHERE client AND id = ANY($1)`, ids)
	if err != nil {
		return nil, storeError("find ids", err)
	}
	defer rows.Close()
	out := map[string]odometer.StoredEvent{}
	for rows.Next() {
		var id string
		var st odometer.StoredEvent
		if err := rows.Scan(&id, &st.Fingerprint, &st.Seq); err != nil {
			return nil, storeError("find ids", err)
		}
		out[id] = st
	}
	if err := rows.Err(); err != nil {
		return nil, storeError("find ids", err)
	}
	return out, nil
}

// Insert implements odometer.IngestTx: one statement for every event.
func (t *ingestTx) Insert(events []*odometer.Event, fps []int64) error {
	var in insertArrays
	for i, e := range events {
		in.add(e, fps[i])
	}
	rows, err := t.tx.Query(t.ctx, insertEvents, in.ids, in.client, in.fps, in.types, in.customers, in.values, in.metadata, in.ts, in.received)
	if err != nil {
		return storeError("insert events", err)
	}
	defer rows.Close()
	seqs := make([]int64, 0, len(events))
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return storeError("insert events", err)
		}
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return storeError("insert events", err)
	}
	if len(seqs) != len(events) {
		return storeError("insert events", fmt.Errorf("%d rows inserted of %d", len(seqs), len(events)))
	}
	// The rows were inserted in order, so their seqs ascend with them.
	slices.Sort(seqs)
	for i, e := range events {
		e.Seq = seqs[i]
	}
	return nil
}

// insertEvents inserts rows from arrays in their order, and returns the
// seq of each row inserted.
const insertEvents = `INSERT INTO events (id, client, fp, event_type, customer_id, value, metadata, ts, received_at)
	SELECT * FROM unnest($1::text[], $2::boolean[], $3::bigint[], $4::text[], $5::text[], $6::float8[], $7::bytea[],
		$8::timestamptz[], $9::timestamptz[])
	RETURNING seq`

// insertArrays are the columns of the rows to insert.
type insertArrays struct {
	ids       []string
	client    []bool
	fps       []int64
	types     []string
	customers []string
	values    []float64
	metadata  [][]byte
	ts        []time.Time
	received  []time.Time
}

func (a *insertArrays) add(e *odometer.Event, fp int64) {
	a.ids = append(a.ids, e.ID)
	a.client = append(a.client, e.ClientID)
	a.fps = append(a.fps, fp)
	a.types = append(a.types, e.EventType)
	a.customers = append(a.customers, e.CustomerID)
	a.values = append(a.values, e.Value)
	a.metadata = append(a.metadata, e.Metadata)
	a.ts = append(a.ts, ms(e.Time))
	a.received = append(a.received, ms(e.ReceivedAt))
}

// FindEvents implements odometer.EventStore.
func (s *Store) FindEvents(ctx context.Context, f odometer.EventFilter) ([]odometer.Event, string, error) {
	var where []string
	var a args
	if f.Cursor != "" {
		c, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || c < 0 {
			return nil, "", odometer.Errorf(odometer.EINVALID, "cursor is not valid")
		}
		where = append(where, "seq < "+a.add(c))
	}
	where = append(where, eventWhere(f, &a)...)
	q := `SELECT seq, id, client, event_type, customer_id, value, metadata, ts, received_at FROM events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	q += " ORDER BY seq DESC LIMIT " + a.add(limit+1)
	rows, err := s.pool.Query(ctx, q, a...)
	if err != nil {
		return nil, "", storeError("find events", err)
	}
	defer rows.Close()
	var out []odometer.Event
	for rows.Next() {
		var e odometer.Event
		if err := rows.Scan(&e.Seq, &e.ID, &e.ClientID, &e.EventType, &e.CustomerID, &e.Value, &e.Metadata, &e.Time, &e.ReceivedAt); err != nil {
			return nil, "", storeError("find events", err)
		}
		e.Time, e.ReceivedAt = e.Time.UTC(), e.ReceivedAt.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", storeError("find events", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(out[limit-1].Seq, 10)
	}
	return out, next, nil
}
