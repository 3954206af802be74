package postgres

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/odometer-dev/odometer"
)

// LockAggregation implements odometer.AggregationStore. The lock is a
// session-level advisory lock, held on a connection taken from the pool
// for the purpose: it excludes every replica, and a replica that dies
// loses it as soon as the server sees its connection close (at once for
// a killed process, within the TCP keepalive bound for a lost network).
func (s *Store) LockAggregation(ctx context.Context) (func(), error) {
	select {
	case s.aggSlot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		<-s.aggSlot
		return nil, storeError("lock aggregation", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, s.aggKey); err != nil {
		// The lock may have been granted as the wait was cancelled: end
		// the session, and the lock with it.
		c := conn.Hijack()
		c.Close(context.WithoutCancel(ctx))
		<-s.aggSlot
		return nil, storeError("lock aggregation", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, s.aggKey); err != nil {
				c := conn.Hijack()
				c.Close(ctx)
			} else {
				conn.Release()
			}
			<-s.aggSlot
		})
	}, nil
}

const runStateQuery = `SELECT watermark, run_to, run_after FROM meta`

// RunState implements odometer.AggregationStore.
func (s *Store) RunState(ctx context.Context) (odometer.RunState, error) {
	var st odometer.RunState
	err := s.pool.QueryRow(ctx, runStateQuery).Scan(&st.Watermark, &st.To, &st.After)
	return st, storeError("run state", err)
}

// MaxSeq implements odometer.AggregationStore. Commits of events are one
// at a time and in seq order, so every event up to the answer is visible.
func (s *Store) MaxSeq(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&n)
	return n, storeError("max seq", err)
}

// ScanEvents implements odometer.AggregationStore. The server sorts the
// range (spilling to disk past work_mem) and the rows stream, so the
// aggregator holds one customer at a time, not the whole range.
func (s *Store) ScanEvents(ctx context.Context, after, upto int64, fromCustomer string, metadataTypes []string, fn func(*odometer.Event) error) error {
	if metadataTypes == nil {
		metadataTypes = []string{} // no event's metadata
	}
	rows, err := s.pool.Query(ctx, `SELECT customer_id, event_type, seq, value, ts, CASE WHEN event_type = ANY($4) THEN metadata END FROM events
		WHERE seq > $1 AND seq <= $2 AND customer_id > $3 ORDER BY customer_id, event_type, seq`, after, upto, fromCustomer, metadataTypes)
	if err != nil {
		return storeError("scan events", err)
	}
	defer rows.Close()
	var e odometer.Event
	var customer, eventType pgtype.DriverBytes
	for rows.Next() {
		if err := rows.Scan(&customer, &eventType, &e.Seq, &e.Value, &e.Time, &e.Metadata); err != nil {
			return storeError("scan events", err)
		}
		// The rows come sorted: keep one string per run of equal values.
		if string(customer) != e.CustomerID {
			e.CustomerID = string(customer)
		}
		if string(eventType) != e.EventType {
			e.EventType = string(eventType)
		}
		e.Time = e.Time.UTC()
		if err := fn(&e); err != nil {
			return err
		}
	}
	return storeError("scan events", rows.Err())
}

// Aggregate implements odometer.AggregationStore. The transaction starts
// by locking the run state's row, so aggregation writers take turns on
// every replica, and each reads the progress the previous one committed.
func (s *Store) Aggregate(ctx context.Context, fn func(odometer.AggregationTx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return storeError("begin", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	t := &aggTx{ctx: ctx, tx: tx}
	if err := tx.QueryRow(ctx, runStateQuery+` FOR UPDATE`).Scan(&t.st.Watermark, &t.st.To, &t.st.After); err != nil {
		return storeError("run state", err)
	}
	if err := fn(t); err != nil {
		return err
	}
	return storeError("commit", tx.Commit(ctx))
}

type aggTx struct {
	ctx context.Context
	tx  pgx.Tx
	st  odometer.RunState
}

func (t *aggTx) RunState() (odometer.RunState, error) { return t.st, nil }

func (t *aggTx) SetRunState(st odometer.RunState) error {
	_, err := t.tx.Exec(t.ctx, `UPDATE meta SET watermark = $1, run_to = $2, run_after = $3`, st.Watermark, st.To, st.After)
	if err != nil {
		return storeError("set run state", err)
	}
	t.st = st
	return nil
}

func (t *aggTx) LoadBuckets(keys []odometer.BucketKey) (map[odometer.BucketKey][]byte, error) {
	out := make(map[odometer.BucketKey][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	customers, types, hours := bucketKeyArrays(keys)
	rows, err := t.tx.Query(t.ctx, `SELECT b.customer_id, b.event_type, b.hour, b.slots
		FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k (customer_id, event_type, hour)
		JOIN buckets b ON (b.customer_id, b.event_type, b.hour) = (k.customer_id, k.event_type, k.hour)`, customers, types, hours)
	if err != nil {
		return nil, storeError("load buckets", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k odometer.BucketKey
		var b []byte
		if err := rows.Scan(&k.CustomerID, &k.EventType, &k.Hour, &b); err != nil {
			return nil, storeError("load buckets", err)
		}
		out[k] = b
	}
	return out, storeError("load buckets", rows.Err())
}

// bucketKeyArrays returns the columns of keys.
func bucketKeyArrays(keys []odometer.BucketKey) (customers, types []string, hours []int64) {
	customers, types, hours = make([]string, len(keys)), make([]string, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		customers[i], types[i], hours[i] = k.CustomerID, k.EventType, k.Hour
	}
	return customers, types, hours
}

func (t *aggTx) SaveBuckets(buckets map[odometer.BucketKey][]byte) error {
	if len(buckets) == 0 {
		return nil
	}
	// In key order, so that the writes walk the index once.
	keys := make([]odometer.BucketKey, 0, len(buckets))
	var gone []odometer.BucketKey
	for k, b := range buckets {
		if len(b) == 0 {
			gone = append(gone, k)
			continue
		}
		keys = append(keys, k)
	}
	if len(gone) > 0 {
		customers, types, hours := bucketKeyArrays(gone)
		if _, err := t.tx.Exec(t.ctx, `DELETE FROM buckets b USING unnest($1::text[], $2::text[], $3::bigint[]) AS k (customer_id, event_type, hour)
			WHERE (b.customer_id, b.event_type, b.hour) = (k.customer_id, k.event_type, k.hour)`, customers, types, hours); err != nil {
			return storeError("save buckets", err)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, func(a, b odometer.BucketKey) int {
		return cmp.Or(strings.Compare(a.CustomerID, b.CustomerID), strings.Compare(a.EventType, b.EventType), cmp.Compare(a.Hour, b.Hour))
	})
	n := len(keys)
	customers, types, hours, slots := make([]string, 0, n), make([]string, 0, n), make([]int64, 0, n), make([][]byte, 0, n)
	for _, k := range keys {
		customers, types, hours, slots = append(customers, k.CustomerID), append(types, k.EventType), append(hours, k.Hour), append(slots, buckets[k])
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO buckets (customer_id, event_type, hour, slots)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[])
		ON CONFLICT (customer_id, event_type, hour) DO UPDATE SET slots = excluded.slots`, customers, types, hours, slots)
	return storeError("save buckets", err)
}

const aggColumns = `customer_id, period, period_key, period_start, period_end, updated_at, states, complete, revision, dirty,
	published, wh_delivered, wh_attempts, wh_delivered_at, wh_last_error, wh_last_attempt_at, wh_dry_run`

func scanAggregation(row pgx.Row) (*odometer.Aggregation, error) {
	var a odometer.Aggregation
	var period string
	var states []byte
	var published, lastErr *string
	if err := row.Scan(&a.CustomerID, &period, &a.PeriodKey, &a.PeriodStart, &a.PeriodEnd, &a.Timestamp, &states, &a.Complete,
		&a.Revision, &a.Dirty, &published, &a.Webhook.Delivered, &a.Webhook.Attempts, &a.Webhook.DeliveredAt, &lastErr,
		&a.Webhook.LastAttemptAt, &a.Webhook.DryRun); err != nil {
		return nil, err
	}
	a.Period = odometer.Period(period)
	a.PeriodStart, a.PeriodEnd, a.Timestamp = a.PeriodStart.UTC(), a.PeriodEnd.UTC(), a.Timestamp.UTC()
	a.Webhook.DeliveredAt, a.Webhook.LastAttemptAt = utc(a.Webhook.DeliveredAt), utc(a.Webhook.LastAttemptAt)
	var err error
	if a.States, err = odometer.DecodeStates(states); err != nil {
		return nil, err
	}
	if published != nil {
		a.Published = new(odometer.Values)
		if err := json.Unmarshal([]byte(*published), a.Published); err != nil {
			return nil, err
		}
	}
	if lastErr != nil {
		a.Webhook.LastError = *lastErr
	}
	return &a, nil
}

func scanAggregations(rows pgx.Rows, op string) ([]*odometer.Aggregation, error) {
	defer rows.Close()
	var out []*odometer.Aggregation
	for rows.Next() {
		a, err := scanAggregation(rows)
		if err != nil {
			return nil, storeError(op, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, storeError(op, err)
	}
	return out, nil
}

func (t *aggTx) LoadAggregations(keys []odometer.AggregationKey) (map[odometer.AggregationKey]*odometer.Aggregation, error) {
	out := make(map[odometer.AggregationKey]*odometer.Aggregation, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	customers, periods, pkeys := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		customers[i], periods[i], pkeys[i] = k.CustomerID, string(k.Period), k.Key
	}
	rows, err := t.tx.Query(t.ctx, `SELECT `+prefixed("a.", aggColumns)+`
		FROM unnest($1::text[], $2::text[], $3::text[]) AS k (customer_id, period, period_key)
		JOIN aggregations a ON (a.customer_id, a.period, a.period_key) = (k.customer_id, k.period, k.period_key)`, customers, periods, pkeys)
	if err != nil {
		return nil, storeError("load aggregations", err)
	}
	aggs, err := scanAggregations(rows, "load aggregations")
	if err != nil {
		return nil, err
	}
	for _, a := range aggs {
		out[a.Key()] = a
	}
	return out, nil
}

// prefixed qualifies each of a list of columns.
func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

func (t *aggTx) SaveAggregations(aggs []*odometer.Aggregation) error {
	if len(aggs) == 0 {
		return nil
	}
	aggs = slices.Clone(aggs)
	slices.SortFunc(aggs, func(a, b *odometer.Aggregation) int {
		return cmp.Or(strings.Compare(a.CustomerID, b.CustomerID), strings.Compare(string(a.Period), string(b.Period)), strings.Compare(a.PeriodKey, b.PeriodKey))
	})
	n := len(aggs)
	var (
		customers, periods, keys = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		starts, ends, updated    = make([]time.Time, 0, n), make([]time.Time, 0, n), make([]time.Time, 0, n)
		states                   = make([][]byte, 0, n)
		complete, dirty          = make([]bool, 0, n), make([]bool, 0, n)
		revisions                = make([]int32, 0, n)
		published                = make([]pgtype.Text, 0, n)
	)
	for _, a := range aggs {
		var pub pgtype.Text
		if a.Published != nil {
			b, _ := json.Marshal(a.Published)
			pub = pgtype.Text{String: string(b), Valid: true}
		}
		customers, periods, keys = append(customers, a.CustomerID), append(periods, string(a.Period)), append(keys, a.PeriodKey)
		starts, ends, updated = append(starts, ms(a.PeriodStart)), append(ends, ms(a.PeriodEnd)), append(updated, ms(a.Timestamp))
		states = append(states, append([]byte{}, odometer.EncodeStates(a.States)...)) // never NULL
		complete, dirty, revisions = append(complete, a.Complete), append(dirty, a.Dirty), append(revisions, int32(a.Revision))
		published = append(published, pub)
	}
	// The webhook status belongs to the sender; a new revision starts it afresh.
	_, err := t.tx.Exec(t.ctx, `INSERT INTO aggregations AS a (customer_id, period, period_key, period_start, period_end, updated_at,
			states, complete, revision, dirty, published)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[],
			$7::bytea[], $8::boolean[], $9::integer[], $10::boolean[], $11::text[])
		ON CONFLICT (customer_id, period, period_key) DO UPDATE SET updated_at = excluded.updated_at, states = excluded.states,
		complete = excluded.complete, dirty = excluded.dirty, published = excluded.published,
		wh_delivered = CASE WHEN excluded.revision = a.revision THEN a.wh_delivered ELSE false END,
		wh_attempts = CASE WHEN excluded.revision = a.revision THEN a.wh_attempts ELSE 0 END,
		wh_delivered_at = CASE WHEN excluded.revision = a.revision THEN a.wh_delivered_at END,
		wh_last_error = CASE WHEN excluded.revision = a.revision THEN a.wh_last_error END,
		wh_last_attempt_at = CASE WHEN excluded.revision = a.revision THEN a.wh_last_attempt_at END,
		wh_dry_run = CASE WHEN excluded.revision = a.revision THEN a.wh_dry_run ELSE false END,
		revision = excluded.revision`,
		customers, periods, keys, starts, ends, updated, states, complete, revisions, dirty, published)
	return storeError("save aggregations", err)
}

func (t *aggTx) FindDue(end time.Time, limit int) ([]*odometer.Aggregation, error) {
	rows, err := t.tx.Query(t.ctx, `SELECT `+aggColumns+` FROM aggregations
		WHERE (NOT complete OR dirty) AND period_end <= $1 ORDER BY period_end LIMIT $2`, ms(end), limit)
	if err != nil {
		return nil, storeError("find due", err)
	}
	return scanAggregations(rows, "find due")
}

func (t *aggTx) AddNotifications(ns []*odometer.Notification) error {
	if len(ns) == 0 {
		return nil
	}
	n := len(ns)
	types, aggIDs, customers := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	revisions, payloads, created := make([]int32, 0, n), make([][]byte, 0, n), make([]time.Time, 0, n)
	for _, x := range ns {
		types, aggIDs, customers = append(types, x.Type), append(aggIDs, x.AggregationID), append(customers, x.CustomerID)
		revisions, payloads, created = append(revisions, int32(x.Revision)), append(payloads, x.Payload), append(created, ms(x.CreatedAt))
	}
	rows, err := t.tx.Query(t.ctx, `INSERT INTO notifications (type, aggregation_id, customer_id, revision, payload, created_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::bytea[], $6::timestamptz[]) RETURNING id`,
		types, aggIDs, customers, revisions, payloads, created)
	if err != nil {
		return storeError("add notifications", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return storeError("add notifications", err)
	}
	// The rows were inserted in order, so their ids ascend with them.
	slices.Sort(ids)
	var d struct {
		ids, types, aggIDs, customers, endpoints []string
		notes                                    []int64
		revisions                                []int32
		at                                       []time.Time
	}
	for i, x := range ns {
		x.ID = ids[i]
		for _, ep := range x.Endpoints {
			d.ids, d.notes, d.types = append(d.ids, odometer.NewID("msg_")), append(d.notes, x.ID), append(d.types, x.Type)
			d.aggIDs, d.customers, d.revisions = append(d.aggIDs, x.AggregationID), append(d.customers, x.CustomerID), append(d.revisions, int32(x.Revision))
			d.endpoints, d.at = append(d.endpoints, ep), append(d.at, ms(x.CreatedAt))
		}
	}
	if len(d.ids) == 0 {
		return nil
	}
	_, err = t.tx.Exec(t.ctx, `INSERT INTO deliveries (id, notification_id, type, aggregation_id, customer_id, revision, endpoint, status,
			next_attempt_at, created_at)
		SELECT u.id, u.note, u.type, u.agg, u.customer, u.revision, u.endpoint, 'pending', u.at, u.at
		FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::integer[], $7::text[], $8::timestamptz[])
			AS u (id, note, type, agg, customer, revision, endpoint, at)`,
		d.ids, d.notes, d.types, d.aggIDs, d.customers, d.revisions, d.endpoints, d.at)
	return storeError("add deliveries", err)
}

// FindAggregations implements odometer.AggregationStore.
func (s *Store) FindAggregations(ctx context.Context, f odometer.AggregationFilter) ([]*odometer.Aggregation, string, error) {
	f.Limit = f.PageSize()
	var where []string
	var a args
	if f.Cursor != "" {
		c, ok := decodeCursor(f.Cursor)
		if !ok {
			return nil, "", odometer.Errorf(odometer.EINVALID, "cursor is not valid")
		}
		where = append(where, "(period_start, customer_id, period, period_key) < ("+a.add(time.UnixMilli(c.start).UTC())+", "+
			a.add(c.customer)+", "+a.add(c.period)+", "+a.add(c.key)+")")
	}
	if f.CustomerID != "" {
		where = append(where, "customer_id = "+a.add(f.CustomerID))
	}
	if f.Period != "" {
		where = append(where, "period = "+a.add(string(f.Period)))
	}
	if f.From != nil {
		where = append(where, "period_start >= "+a.add(ms(*f.From)))
	}
	if f.To != nil {
		where = append(where, "period_start <= "+a.add(ms(*f.To)))
	}
	if f.Complete != nil {
		where = append(where, "complete = "+a.add(*f.Complete))
	}
	q := `SELECT ` + aggColumns + ` FROM aggregations`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY period_start DESC, customer_id DESC, period DESC, period_key DESC LIMIT " + a.add(f.Limit+1)
	rows, err := s.pool.Query(ctx, q, a...)
	if err != nil {
		return nil, "", storeError("find aggregations", err)
	}
	out, err := scanAggregations(rows, "find aggregations")
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = encodeCursor(aggCursor{last.PeriodStart.UnixMilli(), last.CustomerID, string(last.Period), last.PeriodKey})
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

// FindUsage implements odometer.AggregationStore. One REPEATABLE READ
// transaction gives one snapshot to the run state, the buckets and the
// events.
func (s *Store) FindUsage(ctx context.Context, customerID, meter, eventType string, fromHour, toHour int64) ([]odometer.Bucket, []odometer.Event, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, storeError("find usage", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var run odometer.RunState
	if err := tx.QueryRow(ctx, runStateQuery).Scan(&run.Watermark, &run.To, &run.After); err != nil {
		return nil, nil, storeError("find usage", err)
	}
	rows, err := tx.Query(ctx, `SELECT hour, slots FROM buckets WHERE customer_id = $1 AND event_type = $2 AND hour BETWEEN $3 AND $4 ORDER BY hour`,
		customerID, meter, fromHour, toHour)
	if err != nil {
		return nil, nil, storeError("find usage", err)
	}
	var buckets []odometer.Bucket
	for rows.Next() {
		var hour int64
		var b []byte
		if err := rows.Scan(&hour, &b); err != nil {
			rows.Close()
			return nil, nil, storeError("find usage", err)
		}
		bk := odometer.Bucket{BucketKey: odometer.BucketKey{CustomerID: customerID, EventType: meter, Hour: hour}, Slots: map[int64]odometer.State{}}
		if err := odometer.DecodeSlots(hour, b, bk.Slots); err != nil {
			rows.Close()
			return nil, nil, storeError("find usage", err)
		}
		buckets = append(buckets, bk)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, storeError("find usage", err)
	}
	events, err := pendingEvents(ctx, tx, run, customerID, eventType)
	return buckets, events, storeError("find usage", err)
}

// pendingEvents returns a customer's events of one type (of every type
// when eventType is "") that the run state has not folded into buckets.
func pendingEvents(ctx context.Context, tx pgx.Tx, run odometer.RunState, customerID, eventType string) ([]odometer.Event, error) {
	q, args := `SELECT seq, event_type, value, metadata, ts FROM events WHERE seq > $1 AND customer_id = $2`, []any{run.Watermark, customerID}
	if eventType != "" {
		q, args = q+` AND event_type = $3`, append(args, eventType)
	}
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var events []odometer.Event
	for rows.Next() {
		e := odometer.Event{CustomerID: customerID}
		if err := rows.Scan(&e.Seq, &e.EventType, &e.Value, &e.Metadata, &e.Time); err != nil {
			return nil, err
		}
		if run.Folded(customerID, e.Seq) {
			continue // in the buckets already, by a run stopped midway
		}
		e.Time = e.Time.UTC()
		events = append(events, e)
	}
	return events, rows.Err()
}
