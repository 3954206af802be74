package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/odometer-dev/odometer"
)

// Watermark implements odometer.AggregationStore.
func (s *Store) Watermark(ctx context.Context) (int64, error) {
	var w int64
	err := s.read.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'watermark'`).Scan(&w)
	return w, storeError("watermark", err)
}

// Aggregate implements odometer.AggregationStore. In one process the
// single write connection already excludes every other writer.
func (s *Store) Aggregate(ctx context.Context, fn func(odometer.AggregationTx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return storeError("begin", err)
	}
	defer tx.Rollback()
	if err := fn(&aggTx{ctx: ctx, tx: tx}); err != nil {
		return err
	}
	return storeError("commit", tx.Commit())
}

type aggTx struct {
	ctx context.Context
	tx  *sql.Tx
}

func (t *aggTx) Watermark() (int64, error) {
	var w int64
	err := t.tx.QueryRowContext(t.ctx, `SELECT value FROM meta WHERE key = 'watermark'`).Scan(&w)
	return w, storeError("watermark", err)
}

func (t *aggTx) SetWatermark(seq int64) error {
	_, err := t.tx.ExecContext(t.ctx, `UPDATE meta SET value = ? WHERE key = 'watermark'`, seq)
	return storeError("set watermark", err)
}

func (t *aggTx) LoadBuckets(keys []odometer.BucketKey) (map[odometer.BucketKey][]byte, error) {
	st, err := t.tx.PrepareContext(t.ctx, `SELECT slots FROM buckets WHERE customer_id = ? AND event_type = ? AND day = ?`)
	if err != nil {
		return nil, storeError("load buckets", err)
	}
	defer st.Close()
	out := make(map[odometer.BucketKey][]byte)
	for _, k := range keys {
		var b []byte
		err := st.QueryRowContext(t.ctx, k.CustomerID, k.EventType, k.Day).Scan(&b)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, storeError("load buckets", err)
		}
		out[k] = b
	}
	return out, nil
}

func (t *aggTx) SaveBuckets(buckets map[odometer.BucketKey][]byte) error {
	st, err := t.tx.PrepareContext(t.ctx, `INSERT INTO buckets (customer_id, event_type, day, slots) VALUES (?,?,?,?)
		ON CONFLICT (customer_id, event_type, day) DO UPDATE SET slots = excluded.slots`)
	if err != nil {
		return storeError("save buckets", err)
	}
	defer st.Close()
	for k, b := range buckets {
		if _, err := st.ExecContext(t.ctx, k.CustomerID, k.EventType, k.Day, b); err != nil {
			return storeError("save buckets", err)
		}
	}
	return nil
}

const aggColumns = `id, customer_id, period, period_key, period_start, period_end, updated_at, states, complete, revision, dirty,
	published, wh_delivered, wh_attempts, wh_delivered_at, wh_last_error, wh_last_attempt_at, wh_dry_run`

func scanAggregation(row interface{ Scan(...any) error }) (*odometer.Aggregation, error) {
	var a odometer.Aggregation
	var id, period string
	var start, end, updated int64
	var states []byte
	var published, lastErr sql.NullString
	var deliveredAt, lastAttempt sql.NullInt64
	if err := row.Scan(&id, &a.CustomerID, &period, &a.PeriodKey, &start, &end, &updated, &states, &a.Complete, &a.Revision, &a.Dirty,
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

func (t *aggTx) LoadAggregations(ids []string) (map[string]*odometer.Aggregation, error) {
	st, err := t.tx.PrepareContext(t.ctx, `SELECT `+aggColumns+` FROM aggregations WHERE id = ?`)
	if err != nil {
		return nil, storeError("load aggregations", err)
	}
	defer st.Close()
	out := make(map[string]*odometer.Aggregation)
	for _, id := range ids {
		a, err := scanAggregation(st.QueryRowContext(t.ctx, id))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, storeError("load aggregations", err)
		}
		out[id] = a
	}
	return out, nil
}

func (t *aggTx) SaveAggregations(aggs []*odometer.Aggregation) error {
	st, err := t.tx.PrepareContext(t.ctx, `INSERT INTO aggregations (`+aggColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, states = excluded.states, complete = excluded.complete,
		revision = excluded.revision, dirty = excluded.dirty, published = excluded.published, wh_delivered = excluded.wh_delivered,
		wh_attempts = excluded.wh_attempts, wh_delivered_at = excluded.wh_delivered_at, wh_last_error = excluded.wh_last_error,
		wh_last_attempt_at = excluded.wh_last_attempt_at, wh_dry_run = excluded.wh_dry_run`)
	if err != nil {
		return storeError("save aggregations", err)
	}
	defer st.Close()
	for _, a := range aggs {
		var published any
		if a.Published != nil {
			b, _ := json.Marshal(a.Published)
			published = string(b)
		}
		var lastErr any
		if a.Webhook.LastError != "" {
			lastErr = a.Webhook.LastError
		}
		if _, err := st.ExecContext(t.ctx, a.ID(), a.CustomerID, string(a.Period), a.PeriodKey, ms(a.PeriodStart), ms(a.PeriodEnd),
			ms(a.Timestamp), odometer.EncodeStates(a.States), a.Complete, a.Revision, a.Dirty, published,
			a.Webhook.Delivered, a.Webhook.Attempts, nullMS(a.Webhook.DeliveredAt), lastErr, nullMS(a.Webhook.LastAttemptAt), a.Webhook.DryRun); err != nil {
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
	st, err := t.tx.PrepareContext(t.ctx, `INSERT INTO notifications (type, aggregation_id, customer_id, revision, payload, created_at) VALUES (?,?,?,?,?,?)`)
	if err != nil {
		return storeError("add notifications", err)
	}
	defer st.Close()
	dst, err := t.tx.PrepareContext(t.ctx, `INSERT INTO deliveries (id, notification_id, type, aggregation_id, customer_id, revision, endpoint, status, next_attempt_at, created_at)
		VALUES (?,?,?,?,?,?,?,'pending',?,?)`)
	if err != nil {
		return storeError("add notifications", err)
	}
	defer dst.Close()
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
	var where []string
	var args []any
	if f.Cursor != "" {
		start, id, ok := decodeCursor(f.Cursor)
		if !ok {
			return nil, "", odometer.Errorf(odometer.EINVALID, "cursor is not valid")
		}
		where = append(where, "(period_start < ? OR (period_start = ? AND id < ?))")
		args = append(args, start, start, id)
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
	q += " ORDER BY period_start DESC, id DESC LIMIT ?"
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
		next = encodeCursor(ms(last.PeriodStart), last.ID())
	}
	return out, next, nil
}

func encodeCursor(start int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(start, 10) + ":" + id))
}

func decodeCursor(c string) (int64, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", false
	}
	a, id, ok := strings.Cut(string(b), ":")
	start, err := strconv.ParseInt(a, 10, 64)
	return start, id, ok && err == nil
}

// FindUsage implements odometer.AggregationStore.
func (s *Store) FindUsage(ctx context.Context, customerID, eventType string, fromDay, toDay int64) ([]odometer.Bucket, []odometer.Event, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, storeError("find usage", err)
	}
	defer tx.Rollback()
	var w int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'watermark'`).Scan(&w); err != nil {
		return nil, nil, storeError("find usage", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT day, slots FROM buckets WHERE customer_id = ? AND event_type = ? AND day BETWEEN ? AND ? ORDER BY day`,
		customerID, eventType, fromDay, toDay)
	if err != nil {
		return nil, nil, storeError("find usage", err)
	}
	defer rows.Close()
	var buckets []odometer.Bucket
	for rows.Next() {
		var day int64
		var b []byte
		if err := rows.Scan(&day, &b); err != nil {
			return nil, nil, storeError("find usage", err)
		}
		bk := odometer.Bucket{BucketKey: odometer.BucketKey{CustomerID: customerID, EventType: eventType, Day: day}, Slots: map[int64]*odometer.State{}}
		if err := odometer.DecodeSlots(day, b, bk.Slots); err != nil {
			return nil, nil, storeError("find usage", err)
		}
		buckets = append(buckets, bk)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, storeError("find usage", err)
	}
	rows.Close()
	erows, err := tx.QueryContext(ctx, `SELECT seq, value, ts FROM events WHERE seq > ? AND customer_id = ? AND event_type = ?`, w, customerID, eventType)
	if err != nil {
		return nil, nil, storeError("find usage", err)
	}
	defer erows.Close()
	var events []odometer.Event
	for erows.Next() {
		e := odometer.Event{CustomerID: customerID, EventType: eventType}
		var ts int64
		if err := erows.Scan(&e.Seq, &e.Value, &ts); err != nil {
			return nil, nil, storeError("find usage", err)
		}
		e.Time = fromMS(ts)
		events = append(events, e)
	}
	return buckets, events, storeError("find usage", erows.Err())
}
