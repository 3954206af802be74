package postgres

import (
	"context"
	"errors"
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

// commit stores a group in one transaction. A request with a conflicting
// id fails alone; a store error fails every request of the group, and none
// is acknowledged.
//
// Ids repeated within the group are settled before the insert. An id
// already stored is found by the insert itself (ON CONFLICT DO NOTHING):
// if it was stored with another fingerprint, the transaction is rolled
// back and the group is stored again without that request. Conflicts are
// client errors, rare, so the common case is one statement per group, and
// no subtransaction: a savepoint per request would exceed PostgreSQL's
// cache of 64 subtransactions in large groups, and slow every snapshot on
// the server.
func (c *committer) commit(group []*odometer.IngestRequest) {
	fail := func(err error) {
		for _, r := range group {
			if r.Err == nil {
				r.Err, r.Dup = err, nil
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	// stale: the requests with an id stored with another fingerprint. They
	// have failed, and the group is stored without them.
	stale := map[*odometer.IngestRequest]bool{}
	for races := 0; ; {
		again, err := c.try(ctx, group, stale)
		if err == errDeletedMeanwhile && races < 3 {
			races++
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = errUnavailable
		}
		if err != nil {
			fail(err)
			return
		}
		if !again {
			return
		}
	}
}

// errDeletedMeanwhile: a try raced with a delete of the ids it stores; the
// group is stored anew.
var errDeletedMeanwhile = errors.New("insert events: an id was deleted while it was stored again")

// row is one event to insert: request r's event i.
type row struct {
	r *odometer.IngestRequest
	i int
}

// ref names the event that stores an id within the group.
type ref struct {
	fp int64
	row
}

// try stores the requests of the group that are not stale. It reports
// again when it found a request to be stale, rolled back, and the rest
// must be stored anew.
func (c *committer) try(ctx context.Context, group []*odometer.IngestRequest, stale map[*odometer.IngestRequest]bool) (again bool, err error) {
	s := c.s
	var rows []row
	// dupOf: the duplicate dup takes the Seq of the event of.
	type dupOf struct{ dup, of row }
	var sames []dupOf
	added := map[string]ref{} // client ids stored by the group
	var in insertArrays
	for _, r := range group {
		if stale[r] {
			continue
		}
		r.Err = nil
		r.Dup = make([]bool, len(r.Events))
		mine := map[string]ref{}
		start := len(rows)
		var mySames []dupOf
		for i := range r.Events {
			e := &r.Events[i]
			fp := e.Fingerprint()
			if e.ClientID {
				p, ok := mine[e.ID]
				if !ok {
					p, ok = added[e.ID]
				}
				if ok {
					if p.fp != fp {
						r.Err = odometer.ConflictError(e.ID)
						break
					}
					r.Dup[i] = true
					mySames = append(mySames, dupOf{row{r, i}, p.row})
					continue
				}
				mine[e.ID] = ref{fp, row{r, i}}
			}
			rows = append(rows, row{r, i})
			in.add(e, fp)
		}
		if r.Err != nil {
			r.Dup = nil
			rows = rows[:start]
			in.truncate(start)
			continue
		}
		for id, p := range mine {
			added[id] = p
		}
		sames = append(sames, mySames...)
	}
	if len(rows) == 0 {
		return false, nil
	}

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, storeError("insert events", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, storeError("insert events", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// The ingest lock makes commits of events one at a time, over all
	// replicas, so that seq order is commit order.
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, s.ingestKey)
	b.Queue(insertEvents, in.ids, in.client, in.fps, in.types, in.customers, in.values, in.metadata, in.ts, in.received)
	br := tx.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return false, storeError("lock ingest", err)
	}
	res, err := br.Query()
	if err != nil {
		br.Close()
		return false, storeError("insert events", err)
	}
	var seqs []int64
	for res.Next() {
		var seq int64
		if err := res.Scan(&seq); err != nil {
			res.Close()
			br.Close()
			return false, storeError("insert events", err)
		}
		seqs = append(seqs, seq)
	}
	res.Close()
	if err := res.Err(); err != nil {
		br.Close()
		return false, storeError("insert events", err)
	}
	if err := br.Close(); err != nil {
		return false, storeError("insert events", err)
	}
	// The rows were inserted in order, so their seqs ascend with them.
	slices.Sort(seqs)

	// Rows not inserted carry a client id stored before: a duplicate, or a
	// conflict that makes its request stale. Found by their ids, they are
	// told from the rows just inserted by their seqs.
	type stored struct{ fp, seq int64 }
	var before map[string]stored
	if len(seqs) < len(rows) {
		now := make(map[int64]bool, len(seqs))
		for _, q := range seqs {
			now[q] = true
		}
		var ids []string
		for _, w := range rows {
			if e := &w.r.Events[w.i]; e.ClientID {
				ids = append(ids, e.ID)
			}
		}
		q, err := tx.Query(ctx, `SELECT id, fp, seq FROM events WHERE client AND id = ANY($1)`, ids)
		if err != nil {
			return false, storeError("find ids", err)
		}
		before = map[string]stored{}
		for q.Next() {
			var id string
			var st stored
			if err := q.Scan(&id, &st.fp, &st.seq); err != nil {
				q.Close()
				return false, storeError("find ids", err)
			}
			if !now[st.seq] {
				before[id] = st
			}
		}
		q.Close()
		if err := q.Err(); err != nil {
			return false, storeError("find ids", err)
		}
		if len(before)+len(seqs) != len(rows) {
			// A row was neither inserted nor found: deleted between the
			// two statements (deletes do not take the ingest lock).
			return false, errDeletedMeanwhile
		}
		for k, w := range rows {
			e := &w.r.Events[w.i]
			if st, ok := before[e.ID]; ok && e.ClientID && st.fp != in.fps[k] {
				stale[w.r] = true
				w.r.Err, w.r.Dup = odometer.ConflictError(e.ID), nil
				again = true
			}
		}
		if again {
			return true, nil // rolled back by the deferred Rollback
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, storeError("commit", err)
	}

	k := 0
	for _, w := range rows {
		e := &w.r.Events[w.i]
		if st, ok := before[e.ID]; ok && e.ClientID {
			w.r.Dup[w.i] = true
			e.Seq = st.seq
			continue
		}
		e.Seq = seqs[k]
		k++
	}
	for _, d := range sames {
		d.dup.r.Events[d.dup.i].Seq = d.of.r.Events[d.of.i].Seq
	}
	return false, nil
}

// insertEvents inserts rows from arrays in their order, skipping client
// ids already stored, and returns the seq of each row inserted.
const insertEvents = `INSERT INTO events (id, client, fp, event_type, customer_id, value, metadata, ts, received_at)
	SELECT * FROM unnest($1::text[], $2::boolean[], $3::bigint[], $4::text[], $5::text[], $6::float8[], $7::bytea[],
		$8::timestamptz[], $9::timestamptz[])
	ON CONFLICT (id) WHERE client DO NOTHING
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

func (a *insertArrays) truncate(n int) {
	a.ids, a.client, a.fps, a.types, a.customers = a.ids[:n], a.client[:n], a.fps[:n], a.types[:n], a.customers[:n]
	a.values, a.metadata, a.ts, a.received = a.values[:n], a.metadata[:n], a.ts[:n], a.received[:n]
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
