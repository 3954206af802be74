package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ncruces/go-sqlite3"

	"github.com/odometer-dev/odometer"
)

// committer stores the groups of the group commit, so that concurrent
// requests share one fsync. It owns the write connection's prepared
// statements and the next seq.
type committer struct {
	*odometer.GroupCommit
	s       *Store
	nextSeq int64

	// Statements prepared on the one write connection, for the
	// committer's life.
	stmts map[int]*sql.Stmt // INSERT of n rows
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
	if s.ingest == nil {
		return nil, errors.New("create events: store opened without ingest")
	}
	return s.ingest.Submit(ctx, events)
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
	if len(c.stmts) > 0 {
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
	return nil
}

// closeStmts closes the prepared statements when the committer stops.
func (c *committer) closeStmts() {
	for n, st := range c.stmts {
		st.Close()
		delete(c.stmts, n)
	}
}

// commit stores a group in one transaction, settled by
// odometer.SettleGroup. A request with a conflicting id fails alone; a
// store error fails every request of the group, and none is acknowledged.
// The ids stored go into the id index once the transaction is committed.
func (c *committer) commit(group []*odometer.IngestRequest) {
	fail := func(err error) {
		for _, r := range group {
			if r.Err == nil {
				r.Err, r.Dup = err, nil
			}
		}
	}
	ctx := context.Background()
	if err := c.prepare(ctx); err != nil {
		fail(storeError("prepare", err))
		return
	}
	// The transaction on a connection of its own, so that deduplication
	// can read through the driver beneath database/sql (see confirm).
	conn, err := c.s.write.Conn(ctx)
	if err != nil {
		fail(storeError("begin", err))
		return
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		fail(storeError("begin", err))
		return
	}
	defer tx.Rollback()
	t := &ingestTx{c: c, ctx: ctx, conn: conn, tx: tx, seq: c.nextSeq,
		w: &inserter{c: c, ctx: ctx, tx: tx, args: make([]any, 0, rowsPerInsert*insertArgs)}}
	if err := odometer.SettleGroup(group, t); err != nil {
		fail(err)
		return
	}
	if err := t.w.flush(); err != nil {
		fail(storeError("insert event", err))
		return
	}
	if err := tx.Commit(); err != nil {
		fail(storeError("commit", err))
		return
	}
	c.nextSeq = t.seq
	c.s.ids.committedUpTo(t.ids, t.seq-1)
}

// ingestTx is the odometer.IngestTx of one commit.
type ingestTx struct {
	c    *committer
	ctx  context.Context
	conn *sql.Conn // the transaction's
	tx   *sql.Tx
	w    *inserter
	seq  int64  // the next seq
	ids  []pair // the client ids inserted
}

// Stored implements odometer.IngestTx: the id index names the candidate
// events of each id, and the events themselves, read by seq, confirm it.
// The newest candidates are read first; only an id that none of them is
// (an id whose hash another id shares, or whose event was deleted) is
// looked up again, for every candidate.
func (t *ingestTx) Stored(ids []string) (map[string]odometer.StoredEvent, error) {
	out := make(map[string]odometer.StoredEvent, len(ids))
	hs := make([]uint64, len(ids))
	for i, id := range ids {
		hs[i] = uint64(odometer.IDHash(id))
	}
	tried, err := t.confirmFound(ids, hs, true, nil, out)
	if err != nil {
		return nil, err
	}
	// The ids with candidates that none of them confirmed.
	var again []string
	var againHs []uint64
	for k, c := range tried {
		id := ids[c.i]
		if _, ok := out[id]; !ok && (k == 0 || tried[k-1].i != c.i) {
			again, againHs = append(again, id), append(againHs, hs[c.i])
		}
	}
	if len(again) == 0 {
		return out, nil
	}
	skip := make(map[int64]bool, len(tried))
	for _, c := range tried {
		skip[c.seq] = true
	}
	if _, err := t.confirmFound(again, againHs, false, skip, out); err != nil {
		return nil, err
	}
	return out, nil
}

// confirmFound looks the hashes of ids up in the id index, reads the
// events of the candidate seqs (but those of skip) and puts in out the ids
// they confirm. It returns the candidates, sorted by the index of their id.
func (t *ingestTx) confirmFound(ids []string, hs []uint64, newest bool, skip map[int64]bool, out map[string]odometer.StoredEvent) ([]hit, error) {
	cands, err := t.c.s.ids.lookup(hs, newest, make([]hit, 0, len(hs)))
	if err != nil {
		return nil, storeError("find ids", err)
	}
	if skip != nil {
		cands = slices.DeleteFunc(cands, func(c hit) bool { return skip[c.seq] })
	}
	if len(cands) == 0 {
		return nil, nil
	}
	slices.SortFunc(cands, func(a, b hit) int { return cmp.Or(cmpInt(a.seq, b.seq), a.i-b.i) })
	seqs := make([]int64, 0, len(cands))
	for k, c := range cands {
		if k == 0 || c.seq != cands[k-1].seq {
			seqs = append(seqs, c.seq)
		}
	}
	if err := t.confirm(seqs, ids, cands, out); err != nil {
		return nil, storeError("find ids", err)
	}
	slices.SortFunc(cands, func(a, b hit) int { return a.i - b.i })
	return cands, nil
}

// Insert implements odometer.IngestTx: the events take the next seqs.
func (t *ingestTx) Insert(events []*odometer.Event, fps []int64) error {
	for i, e := range events {
		var idh any
		if e.ClientID {
			h := odometer.IDHash(e.ID)
			idh = h
			t.ids = append(t.ids, pair{uint64(h), t.seq})
		}
		if err := t.w.add(t.seq, e, idh, fps[i]); err != nil {
			return storeError("insert event", err)
		}
		e.Seq = t.seq
		t.seq++
	}
	return nil
}

// findPer is the seqs of one statement of confirm.
const findPer = 100

// findQuery reads the events of findPer seqs; seq 0, which no event has,
// fills the places of a shorter list.
var findQuery = `SELECT seq, id, fp FROM events WHERE seq IN (` + strings.TrimSuffix(strings.Repeat("?,", findPer), ",") + `)`

// confirm reads the events of seqs, and puts in out those whose id is
// the id of one of the candidates (sorted by seq) of their seq. It reads
// through the driver's own connection, in the transaction, rather than
// database/sql: a batch of duplicates is mostly these reads, and
// database/sql's rows cost more than SQLite's.
func (t *ingestTx) confirm(seqs []int64, ids []string, cands []hit, out map[string]odometer.StoredEvent) error {
	return t.conn.Raw(func(dc any) error {
		rc, ok := dc.(interface{ Raw() *sqlite3.Conn })
		if !ok {
			return fmt.Errorf("the driver's connection %T has no Raw", dc)
		}
		st, _, err := rc.Raw().Prepare(findQuery)
		if err != nil {
			return err
		}
		defer st.Close()
		for len(seqs) > 0 {
			n := min(len(seqs), findPer)
			for k := range findPer {
				var v int64
				if k < n {
					v = seqs[k]
				}
				if err := st.BindInt64(k+1, v); err != nil {
					return err
				}
			}
			for st.Step() {
				seq, id, fp := st.ColumnInt64(0), st.ColumnRawText(1), st.ColumnInt64(2)
				k, _ := slices.BinarySearchFunc(cands, seq, func(c hit, seq int64) int { return cmpInt(c.seq, seq) })
				for ; k < len(cands) && cands[k].seq == seq; k++ {
					if want := ids[cands[k].i]; want == string(id) {
						out[want] = odometer.StoredEvent{Seq: seq, Fingerprint: fp}
					}
				}
			}
			// Step answers false at the end and on an error alike.
			if err := st.Err(); err != nil {
				return err
			}
			if err := st.Reset(); err != nil {
				return err
			}
			seqs = seqs[n:]
		}
		return nil
	})
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
