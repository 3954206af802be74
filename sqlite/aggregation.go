package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/odometer-dev/odometer"
)

const runStateQuery = `SELECT (SELECT value FROM meta WHERE key = 'watermark'), (SELECT value FROM meta WHERE key = 'run_to'),
	(SELECT value FROM meta WHERE key = 'run_after')`

func scanRunState(row *sql.Row) (odometer.RunState, error) {
	var st odometer.RunState
	err := row.Scan(&st.Watermark, &st.To, &st.After)
	return st, err
}

// LockAggregation implements odometer.AggregationStore. One process
// serves one SQLite file, so a lock in the process excludes every other run.
func (s *Store) LockAggregation(ctx context.Context) (func(), error) {
	select {
	case s.aggLock <- struct{}{}:
		return func() { <-s.aggLock }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// RunState implements odometer.AggregationStore.
func (s *Store) RunState(ctx context.Context) (odometer.RunState, error) {
	st, err := scanRunState(s.read.QueryRowContext(ctx, runStateQuery))
	return st, storeError("run state", err)
}

// MaxSeq implements odometer.AggregationStore.
func (s *Store) MaxSeq(ctx context.Context) (int64, error) {
	var n int64
	err := s.read.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&n)
	return n, storeError("max seq", err)
}

// Aggregate implements odometer.AggregationStore. In one process the
// single write connection already excludes every other writer.
func (s *Store) Aggregate(ctx context.Context, fn func(odometer.AggregationTx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return storeError("begin", err)
	}
	defer tx.Rollback()
	t := &aggTx{ctx: ctx, tx: tx}
	defer t.close()
	if err := fn(t); err != nil {
		return err
	}
	return storeError("commit", tx.Commit())
}

type aggTx struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	// rows are the bucket rows LoadBuckets read (or found missing), for
	// SaveBuckets to rewrite without reading them again.
	rows map[hourKey]sections
}

// stmt returns the transaction's prepared statement for q.
func (t *aggTx) stmt(q string) (*sql.Stmt, error) {
	if st, ok := t.stmts[q]; ok {
		return st, nil
	}
	st, err := t.tx.PrepareContext(t.ctx, q)
	if err != nil {
		return nil, err
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[q] = st
	return st, nil
}

func (t *aggTx) close() {
	for _, st := range t.stmts {
		st.Close()
	}
}

func (t *aggTx) RunState() (odometer.RunState, error) {
	st, err := scanRunState(t.tx.QueryRowContext(t.ctx, runStateQuery))
	return st, storeError("run state", err)
}

func (t *aggTx) SetRunState(st odometer.RunState) error {
	_, err := t.tx.ExecContext(t.ctx, `UPDATE meta SET value = CASE key WHEN 'watermark' THEN ?1 WHEN 'run_to' THEN ?2 ELSE ?3 END
		WHERE key IN ('watermark', 'run_to', 'run_after')`, st.Watermark, st.To, st.After)
	return storeError("set run state", err)
}

// chunk is how many rows one multi-row statement carries: statements are
// prepared once per transaction and size, and one statement for many rows
// costs far less than one for each.
const chunk = 128

// placeholders returns n groups of k placeholders: "(?,?),(?,?)".
func placeholders(n, k int) string {
	g := "(" + strings.Repeat("?,", k-1) + "?)"
	return strings.Repeat(g+",", n-1) + g
}

const aggColumns = `customer_id, period, period_key, period_start, period_end, updated_at, states, complete, revision, dirty,
	published, wh_delivered, wh_attempts, wh_delivered_at, wh_last_error, wh_last_attempt_at, wh_dry_run`

func scanAggregation(row interface{ Scan(...any) error }) (*odometer.Aggregation, error) {
	var a odometer.Aggregation
	var period string
	var start, end, updated int64
	var states []byte
	var published, lastErr sql.NullString
	var deliveredAt, lastAttempt sql.NullInt64
	if err := row.Scan(&a.CustomerID, &period, &a.PeriodKey, &start, &end, &updated, &states, &a.Complete, &a.Revision, &a.Dirty,
		&published, &a.Webhook.Delivered, &a.Webhook.Attempts, &deliveredAt, &lastErr, &lastAttempt, &a.Webhook.DryRun); err != nil {
		return nil, err
	}
	a.Period = odometer.Period(period)
	a.PeriodStart, a.PeriodEnd, a.Timestamp = fromMS(start), fromMS(end), fromMS(updated)
	var err error
	if a.States, err = odometer.DecodeStates(states); err != nil {
		return nil, err
	}
	if published.Valid {
		a.Published = new(odometer.Values)
		if err := json.Unmarshal([]byte(published.String), a.Published); err != nil {
			return nil, err
		}
	}
	a.Webhook.DeliveredAt, a.Webhook.LastAttemptAt = fromNullMS(deliveredAt), fromNullMS(lastAttempt)
	a.Webhook.LastError = lastErr.String
	return &a, nil
}

func (t *aggTx) LoadAggregations(keys []odometer.AggregationKey) (map[odometer.AggregationKey]*odometer.Aggregation, error) {
	out := make(map[odometer.AggregationKey]*odometer.Aggregation, len(keys))
	// A key past the newest of its period type ever written cannot exist:
	// keys of one period type sort as their periods do.
	newest, err := t.newestKeys()
	if err != nil {
		return nil, storeError("load aggregations", err)
	}
	keys = slices.DeleteFunc(slices.Clone(keys), func(k odometer.AggregationKey) bool { return k.Key > newest[k.Period] })
	// Customers with no aggregation at all (as in a first run) are found
	// with one look-up each, not one for each of their periods.
	customers := map[string]bool{}
	for _, k := range keys {
		customers[k.CustomerID] = false
	}
	if err := t.existing("aggregations", customers); err != nil {
		return nil, storeError("load aggregations", err)
	}
	keys = slices.DeleteFunc(keys, func(k odometer.AggregationKey) bool { return !customers[k.CustomerID] })
	slices.SortFunc(keys, compareAggregationKeys)
	for len(keys) > 0 {
		n := min(len(keys), chunk)
		st, err := t.stmt(`SELECT ` + aggColumns + ` FROM aggregations WHERE (customer_id, period, period_key) IN (VALUES ` + placeholders(n, 3) + `)`)
		if err != nil {
			return nil, storeError("load aggregations", err)
		}
		args := make([]any, 0, 3*n)
		for _, k := range keys[:n] {
			args = append(args, k.CustomerID, string(k.Period), k.Key)
		}
		keys = keys[n:]
		rows, err := st.QueryContext(t.ctx, args...)
		if err != nil {
			return nil, storeError("load aggregations", err)
		}
		for rows.Next() {
			a, err := scanAggregation(rows)
			if err != nil {
				rows.Close()
				return nil, storeError("load aggregations", err)
			}
			out[a.Key()] = a
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, storeError("load aggregations", err)
		}
	}
	return out, nil
}

// compareAggregationKeys orders keys by period type, period, then
// customer: the order in which new rows are appended, so that the rows of
// one period sit side by side (see migration 4).
func compareAggregationKeys(a, b odometer.AggregationKey) int {
	return cmp.Or(strings.Compare(string(a.Period), string(b.Period)), strings.Compare(a.Key, b.Key), strings.Compare(a.CustomerID, b.CustomerID))
}

// newestKeys returns the newest key of each period type ever written.
func (t *aggTx) newestKeys() (map[odometer.Period]string, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT substr(key, 12), value FROM meta WHERE key LIKE 'newest_key:%'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[odometer.Period]string{}
	for rows.Next() {
		var p, k string
		if err := rows.Scan(&p, &k); err != nil {
			return nil, err
		}
		out[odometer.Period(p)] = k
	}
	return out, rows.Err()
}

func (t *aggTx) SaveAggregations(aggs []*odometer.Aggregation) error {
	if len(aggs) == 0 {
		return nil
	}
	newest, err := t.newestKeys()
	if err != nil {
		return storeError("save aggregations", err)
	}
	moved := map[odometer.Period]string{}
	for _, a := range aggs {
		if a.PeriodKey > newest[a.Period] && a.PeriodKey > moved[a.Period] {
			moved[a.Period] = a.PeriodKey
		}
	}
	for p, k := range moved {
		if _, err := t.tx.ExecContext(t.ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			"newest_key:"+string(p), k); err != nil {
			return storeError("save aggregations", err)
		}
	}
	// In the order new rows are appended (see compareAggregationKeys).
	aggs = slices.Clone(aggs)
	slices.SortFunc(aggs, func(a, b *odometer.Aggregation) int { return compareAggregationKeys(a.Key(), b.Key()) })
	const cols = 11
	for len(aggs) > 0 {
		n := min(len(aggs), chunk)
		// The webhook status belongs to the sender; a new revision starts it afresh.
		st, err := t.stmt(`INSERT INTO aggregations (customer_id, period, period_key, period_start, period_end, updated_at, states, complete, revision, dirty, published)
			VALUES ` + placeholders(n, cols) + `
			ON CONFLICT (customer_id, period, period_key) DO UPDATE SET updated_at = excluded.updated_at, states = excluded.states,
			complete = excluded.complete, dirty = excluded.dirty, published = excluded.published,
			wh_delivered = iif(excluded.revision = revision, wh_delivered, 0),
			wh_attempts = iif(excluded.revision = revision, wh_attempts, 0),
			wh_delivered_at = iif(excluded.revision = revision, wh_delivered_at, NULL),
			wh_last_error = iif(excluded.revision = revision, wh_last_error, NULL),
			wh_last_attempt_at = iif(excluded.revision = revision, wh_last_attempt_at, NULL),
			wh_dry_run = iif(excluded.revision = revision, wh_dry_run, 0),
			revision = excluded.revision`)
		if err != nil {
			return storeError("save aggregations", err)
		}
		args := make([]any, 0, cols*n)
		for _, a := range aggs[:n] {
			var published any
			if a.Published != nil {
				b, _ := json.Marshal(a.Published)
				published = string(b)
			}
			args = append(args, a.CustomerID, string(a.Period), a.PeriodKey, ms(a.PeriodStart), ms(a.PeriodEnd),
				ms(a.Timestamp), odometer.EncodeStates(a.States), a.Complete, a.Revision, a.Dirty, published)
		}
		aggs = aggs[n:]
		if _, err := st.ExecContext(t.ctx, args...); err != nil {
			return storeError("save aggregations", err)
		}
	}
	return nil
}

func (t *aggTx) FindDue(end time.Time, limit int) ([]*odometer.Aggregation, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT `+aggColumns+` FROM aggregations
		WHERE (complete = 0 OR dirty = 1) AND period_end <= ? ORDER BY period_end LIMIT ?`, ms(end), limit)
	if err != nil {
		return nil, storeError("find due", err)
	}
	defer rows.Close()
	var out []*odometer.Aggregation
	for rows.Next() {
		a, err := scanAggregation(rows)
		if err != nil {
			return nil, storeError("find due", err)
		}
		out = append(out, a)
	}
	return out, storeError("find due", rows.Err())
}

func (t *aggTx) AddNotifications(ns []*odometer.Notification) error {
	if len(ns) == 0 {
		return nil
	}
	st, err := t.stmt(`INSERT INTO notifications (type, aggregation_id, customer_id, revision, payload, created_at) VALUES (?,?,?,?,?,?)`)
	if err != nil {
		return storeError("add notifications", err)
	}
	dst, err := t.stmt(`INSERT INTO deliveries (id, notification_id, type, aggregation_id, customer_id, revision, endpoint, status, next_attempt_at, created_at)
		VALUES (?,?,?,?,?,?,?,'pending',?,?)`)
	if err != nil {
		return storeError("add notifications", err)
	}
	for _, n := range ns {
		res, err := st.ExecContext(t.ctx, n.Type, n.AggregationID, n.CustomerID, n.Revision, n.Payload, ms(n.CreatedAt))
		if err != nil {
			return storeError("add notifications", err)
		}
		n.ID, _ = res.LastInsertId()
		for _, ep := range n.Endpoints {
			if _, err := dst.ExecContext(t.ctx, odometer.NewID("msg_"), n.ID, n.Type, n.AggregationID, n.CustomerID, n.Revision, ep,
				ms(n.CreatedAt), ms(n.CreatedAt)); err != nil {
				return storeError("add deliveries", err)
			}
		}
	}
	return nil
}

// FindAggregations implements odometer.AggregationStore.
func (s *Store) FindAggregations(ctx context.Context, f odometer.AggregationFilter) ([]*odometer.Aggregation, string, error) {
	f.Limit = f.PageSize()
	var where []string
	var args []any
	if f.Cursor != "" {
		c, ok := decodeCursor(f.Cursor)
		if !ok {
			return nil, "", odometer.Errorf(odometer.EINVALID, "cursor is not valid")
		}
		where = append(where, "(period_start, customer_id, period, period_key) < (?, ?, ?, ?)")
		args = append(args, c.start, c.customer, c.period, c.key)
	}
	if f.CustomerID != "" {
		where, args = append(where, "customer_id = ?"), append(args, f.CustomerID)
	}
	if f.Period != "" {
		where, args = append(where, "period = ?"), append(args, string(f.Period))
	}
	if f.From != nil {
		where, args = append(where, "period_start >= ?"), append(args, ms(*f.From))
	}
	if f.To != nil {
		where, args = append(where, "period_start <= ?"), append(args, ms(*f.To))
	}
	if f.Complete != nil {
		where, args = append(where, "complete = ?"), append(args, *f.Complete)
	}
	q := `SELECT ` + aggColumns + ` FROM aggregations`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY period_start DESC, customer_id DESC, period DESC, period_key DESC LIMIT ?"
	args = append(args, f.Limit+1)
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", storeError("find aggregations", err)
	}
	defer rows.Close()
	var out []*odometer.Aggregation
	for rows.Next() {
		a, err := scanAggregation(rows)
		if err != nil {
			return nil, "", storeError("find aggregations", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", storeError("find aggregations", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = encodeCursor(aggCursor{ms(last.PeriodStart), last.CustomerID, string(last.Period), last.PeriodKey})
	}
	return out, next, nil
}

type aggCursor struct {
	start                 int64
	customer, period, key string
}

func encodeCursor(c aggCursor) string {
	b, _ := json.Marshal([]any{c.start, c.customer, c.period, c.key})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (aggCursor, bool) {
	var c aggCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, false
	}
	var v []json.RawMessage
	if json.Unmarshal(b, &v) != nil || len(v) != 4 {
		return c, false
	}
	ok := json.Unmarshal(v[0], &c.start) == nil && json.Unmarshal(v[1], &c.customer) == nil &&
		json.Unmarshal(v[2], &c.period) == nil && json.Unmarshal(v[3], &c.key) == nil
	return c, ok
}

// FindUsage implements odometer.AggregationStore.
func (s *Store) FindUsage(ctx context.Context, customerID, meter, eventType string, fromHour, toHour int64) ([]odometer.Bucket, []odometer.Event, error) {
	return s.findUsage(ctx, "find usage", customerID, meter, eventType, fromHour, toHour)
}

// findUsage reads, in one snapshot, a customer's buckets of one meter (of
// every meter when meter is "") for UTC hours fromHour..toHour, and its
// events of one type (of every type when eventType is "") not yet folded
// into them.
func (s *Store) findUsage(ctx context.Context, op, customerID, meter, eventType string, fromHour, toHour int64) ([]odometer.Bucket, []odometer.Event, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, storeError(op, err)
	}
	defer tx.Rollback()
	run, err := scanRunState(tx.QueryRowContext(ctx, runStateQuery))
	if err != nil {
		return nil, nil, storeError(op, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT hour, data FROM buckets WHERE customer_id = ? AND hour BETWEEN ? AND ? ORDER BY hour`,
		customerID, fromHour, toHour)
	if err != nil {
		return nil, nil, storeError(op, err)
	}
	defer rows.Close()
	var buckets []odometer.Bucket
	for rows.Next() {
		var hour int64
		var b []byte
		if err := rows.Scan(&hour, &b); err != nil {
			return nil, nil, storeError(op, err)
		}
		secs, err := decodeSections(b)
		if err != nil {
			return nil, nil, storeError(op, err)
		}
		for name, sec := range secs {
			if meter != "" && name != meter {
				continue
			}
			bk := odometer.Bucket{BucketKey: odometer.BucketKey{CustomerID: customerID, EventType: name, Hour: hour}, Slots: map[int64]odometer.State{}}
			if err := odometer.DecodeSlots(hour, sec, bk.Slots); err != nil {
				return nil, nil, storeError(op, err)
			}
			buckets = append(buckets, bk)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, storeError(op, err)
	}
	rows.Close()
	q, args := `SELECT seq, event_type, value, metadata, ts FROM events WHERE seq > ? AND customer_id = ?`, []any{run.Watermark, customerID}
	if eventType != "" {
		q, args = q+` AND event_type = ?`, append(args, eventType)
	}
	erows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, storeError(op, err)
	}
	defer erows.Close()
	var events []odometer.Event
	for erows.Next() {
		e := odometer.Event{CustomerID: customerID}
		var ts int64
		if err := erows.Scan(&e.Seq, &e.EventType, &e.Value, &e.Metadata, &ts); err != nil {
			return nil, nil, storeError(op, err)
		}
		if run.Folded(customerID, e.Seq) {
			continue // in the buckets already, by a run stopped midway
		}
		e.Time = fromMS(ts)
		events = append(events, e)
	}
	return buckets, events, storeError(op, erows.Err())
}
