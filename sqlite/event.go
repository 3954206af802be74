package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/odometer-dev/odometer"
)

// idIndex maps the hash of every stored client id to the seq of its event.
// It lives in memory, loaded at start, because a B-tree index on random ids
// makes every insert dirty a random page: at millions of events that costs
// more than the insert itself. Two ids with one hash keep every seq.
type idIndex struct {
	mu    sync.RWMutex
	seq   map[int64]int64
	extra map[int64][]int64 // further seqs of hashes shared by several ids
}

func loadIDIndex(ctx context.Context, db *sql.DB) (*idIndex, error) {
	ix := &idIndex{seq: make(map[int64]int64), extra: make(map[int64][]int64)}
	rows, err := db.QueryContext(ctx, `SELECT idh, seq FROM events WHERE idh IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var h, seq int64
		if err := rows.Scan(&h, &seq); err != nil {
			return nil, err
		}
		ix.add(h, seq)
	}
	return ix, rows.Err()
}

func (ix *idIndex) add(h, seq int64) {
	if _, ok := ix.seq[h]; ok {
		ix.extra[h] = append(ix.extra[h], seq)
		return
	}
	ix.seq[h] = seq
}

// lookup returns the seqs stored under h; the caller holds mu.
func (ix *idIndex) lookup(h int64) []int64 {
	s, ok := ix.seq[h]
	if !ok {
		return nil
	}
	return append([]int64{s}, ix.extra[h]...)
}

// committer stores the groups of the group commit, so that concurrent
// requests share one fsync. It owns the write connection's prepared
// statements and the next seq.
type committer struct {
	*odometer.GroupCommit
	s       *Store
	nextSeq int64

	// Statements prepared on the one write connection, for the
	// committer's life.
	stmts map[int]*sql.Stmt
	get   *sql.Stmt
}

func newCommitter(s *Store, maxSeq int64) *committer {
	c := &committer{s: s, nextSeq: maxSeq + 1, stmts: map[int]*sql.Stmt{}}
	c.GroupCommit = odometer.NewGroupCommit(c.commit)
	return c
}

// close stops the group commit, then closes the statements: no commit
// runs any more.
func (c *committer) close() {
	c.GroupCommit.Close()
	c.closeStmts()
}

// CreateEvents implements odometer.EventStore.
func (s *Store) CreateEvents(ctx context.Context, events []odometer.Event) ([]bool, error) {
	return s.ingest.Submit(ctx, events)
}

type pendingID struct {
	id  string
	fp  int64
	seq int64
}

// rowsPerInsert is the rows of one multi-row INSERT: one statement of 100
// rows costs far less than 100 statements of one.
const rowsPerInsert = 100

const insertColumns = `INSERT INTO events (seq, id, idh, fp, event_type, customer_id, value, metadata, ts, received_at) VALUES `

// inserter buffers the rows of a commit and inserts them rowsPerInsert at a
// time, with statements prepared once for the committer's life.
type inserter struct {
	c    *committer
	ctx  context.Context
	tx   *sql.Tx
	args []any
}

const insertArgs = 10

func (w *inserter) add(seq int64, e *odometer.Event, idh any, fp int64) error {
	var meta any
	if e.Metadata != nil {
		meta = string(e.Metadata)
	}
	w.args = append(w.args, seq, e.ID, idh, fp, e.EventType, e.CustomerID, e.Value, meta,
		e.Time.UnixMilli(), e.ReceivedAt.UnixMilli())
	if len(w.args) == rowsPerInsert*insertArgs {
		return w.flush()
	}
	return nil
}

// flush inserts the buffered rows: in statements of 100, 10 and 1 rows.
func (w *inserter) flush() error {
	for _, n := range []int{rowsPerInsert, 10, 1} {
		for len(w.args) >= n*insertArgs {
			if _, err := w.tx.StmtContext(w.ctx, w.c.stmts[n]).ExecContext(w.ctx, w.args[:n*insertArgs]...); err != nil {
				return err
			}
			w.args = append(w.args[:0], w.args[n*insertArgs:]...)
		}
	}
	return nil
}

// prepare prepares the statements of a commit, once. It runs before the
// transaction begins: the write pool's one connection is the
// transaction's until it ends.
func (c *committer) prepare(ctx context.Context) error {
	if c.get != nil {
		return nil
	}
	for _, n := range []int{rowsPerInsert, 10, 1} {
		q := insertColumns + strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?,?,?),", n), ",")
		st, err := c.s.write.PrepareContext(ctx, q)
		if err != nil {
			c.closeStmts()
			return err
		}
		c.stmts[n] = st
	}
	st, err := c.s.write.PrepareContext(ctx, `SELECT id, fp FROM events WHERE seq = ?`)
	if err != nil {
		c.closeStmts()
		return err
	}
	c.get = st
	return nil
}

// closeStmts closes the prepared statements when the committer stops.
func (c *committer) closeStmts() {
	for n, st := range c.stmts {
		st.Close()
		delete(c.stmts, n)
	}
	if c.get != nil {
		c.get.Close()
		c.get = nil
	}
}

// commit stores a group in one transaction. A request with a conflicting
// id fails alone; a store error fails every request of the group, and none
// is acknowledged.
//
// A new id goes into the in-memory index as soon as it is known to be new,
// while its slot in the map is still in the CPU cache: looking it up and
// adding it after the commit would touch a random place of a large map
// twice. The ids of a request that fails, or of a group whose transaction
// fails, are taken out again.
func (c *committer) commit(group []*odometer.IngestRequest) {
	s := c.s
	ctx := context.Background()
	var early []int64 // hashes put in the index by this group
	fail := func(err error) {
		for _, r := range group {
			if r.Err == nil {
				r.Err, r.Dup = err, nil
			}
		}
		for _, h := range early {
			delete(s.ids.seq, h)
		}
	}
	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	if err := c.prepare(ctx); err != nil {
		fail(storeError("prepare", err))
		return
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		fail(storeError("begin", err))
		return
	}
	defer tx.Rollback()
	w := &inserter{c: c, ctx: ctx, tx: tx, args: make([]any, 0, rowsPerInsert*insertArgs)}

	seq := c.nextSeq
	added := map[string]pendingID{} // ids stored by this group
	var later []pendingID           // ids to index after the commit
	var fps, hs []int64             // the fingerprint and id hash of each event of a request
	for _, r := range group {
		r.Dup = make([]bool, len(r.Events))
		if cap(fps) < len(r.Events) {
			fps, hs = make([]int64, len(r.Events)), make([]int64, len(r.Events))
		}
		fps, hs = fps[:len(r.Events)], hs[:len(r.Events)]
		mine := make(map[string]int, len(r.Events)) // id -> index within the request
		mineEarly := len(early)
		var mineLater []pendingID
		next := seq // the seq the next new event of the request will have
		for i := range r.Events {
			e := &r.Events[i]
			fps[i] = e.Fingerprint()
			if !e.ClientID {
				next++
				continue
			}
			if j, ok := mine[e.ID]; ok {
				if fps[j] != fps[i] {
					r.Err = odometer.ConflictError(e.ID)
					break
				}
				r.Dup[i] = true
				continue
			}
			mine[e.ID] = i
			h := odometer.IDHash(e.ID)
			hs[i] = h
			found := false
			if p, ok := added[e.ID]; ok {
				found = true
				if p.fp != fps[i] {
					r.Err = odometer.ConflictError(e.ID)
				}
				e.Seq = p.seq
			}
			var olds []int64
			if !found {
				olds = s.ids.lookup(h)
			}
			if len(olds) > 0 {
				// The rows of this group so far must be visible to the query.
				if err := w.flush(); err != nil {
					fail(storeError("insert event", err))
					return
				}
			}
			for _, old := range olds {
				if found {
					break
				}
				var id string
				var fp int64
				if err := tx.StmtContext(ctx, c.get).QueryRowContext(ctx, old).Scan(&id, &fp); err != nil {
					if errors.Is(err, sql.ErrNoRows) {
						continue // deleted since, or not yet stored
					}
					fail(storeError("find id", err))
					return
				}
				if id == e.ID {
					found = true
					if fp != fps[i] {
						r.Err = odometer.ConflictError(e.ID)
					}
					e.Seq = old
				}
			}
			if r.Err != nil {
				break
			}
			r.Dup[i] = found
			if found {
				continue
			}
			if len(olds) == 0 {
				s.ids.seq[h] = next
				early = append(early, h)
			} else {
				mineLater = append(mineLater, pendingID{e.ID, fps[i], next})
			}
			next++
		}
		if r.Err != nil {
			r.Dup = nil
			for _, h := range early[mineEarly:] {
				delete(s.ids.seq, h)
			}
			early = early[:mineEarly]
			continue
		}
		later = append(later, mineLater...)
		// The request is valid: store what is new, in the order of the
		// seqs given above.
		for i := range r.Events {
			if r.Dup[i] {
				continue
			}
			e := &r.Events[i]
			var idh any
			if e.ClientID {
				idh = hs[i]
				added[e.ID] = pendingID{e.ID, fps[i], seq}
			}
			if err := w.add(seq, e, idh, fps[i]); err != nil {
				fail(storeError("insert event", err))
				return
			}
			e.Seq = seq
			seq++
		}
	}
	if err := w.flush(); err != nil {
		fail(storeError("insert event", err))
		return
	}
	if err := tx.Commit(); err != nil {
		fail(storeError("commit", err))
		return
	}
	c.nextSeq = seq
	for _, p := range later {
		s.ids.add(odometer.IDHash(p.id), p.seq)
	}
}

// FindEvents implements odometer.EventStore.
func (s *Store) FindEvents(ctx context.Context, f odometer.EventFilter) ([]odometer.Event, string, error) {
	var where []string
	var args []any
	if f.Cursor != "" {
		c, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || c < 0 {
			return nil, "", odometer.Errorf(odometer.EINVALID, "cursor is not valid")
		}
		where, args = append(where, "seq < ?"), append(args, c)
	}
	if f.CustomerID != "" {
		where, args = append(where, "customer_id = ?"), append(args, f.CustomerID)
	}
	if f.EventType != "" {
		where, args = append(where, "event_type = ?"), append(args, f.EventType)
	}
	if f.From != nil {
		where, args = append(where, "ts >= ?"), append(args, ms(*f.From))
	}
	if f.To != nil {
		where, args = append(where, "ts <= ?"), append(args, ms(*f.To))
	}
	q := `SELECT seq, id, idh IS NOT NULL, event_type, customer_id, value, metadata, ts, received_at FROM events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	q += " ORDER BY seq DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", storeError("find events", err)
	}
	defer rows.Close()
	var out []odometer.Event
	for rows.Next() {
		var e odometer.Event
		var meta sql.NullString
		var ts, rcv int64
		if err := rows.Scan(&e.Seq, &e.ID, &e.ClientID, &e.EventType, &e.CustomerID, &e.Value, &meta, &ts, &rcv); err != nil {
			return nil, "", storeError("find events", err)
		}
		if meta.Valid {
			e.Metadata = []byte(meta.String)
		}
		e.Time, e.ReceivedAt = fromMS(ts), fromMS(rcv)
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
