package sqlite

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"strings"

	"github.com/odometer-dev/odometer"
)

// The buckets table holds one row per customer and UTC hour, with a
// section for each event type: a run folding one customer's new events of
// several types reads and writes one row, not one per type, and the row
// stays small (at most four slots of each type).

// hourKey names a row of the buckets table.
type hourKey struct {
	customer string
	hour     int64
}

// sections are the encoded slots of each event type of one row.
type sections map[string][]byte

var errSections = errors.New("corrupt bucket row")

func decodeSections(b []byte) (sections, error) {
	out := sections{}
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errSections
		}
		name := string(b[k : k+int(n)])
		b = b[k+int(n):]
		m, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < m {
			return nil, errSections
		}
		out[name] = b[k : k+int(m)]
		b = b[k+int(m):]
	}
	return out, nil
}

func (s sections) encode() []byte {
	names := make([]string, 0, len(s))
	size := 0
	for n, b := range s {
		names = append(names, n)
		size += len(n) + len(b) + 4
	}
	slices.Sort(names)
	out := make([]byte, 0, size)
	for _, n := range names {
		out = binary.AppendUvarint(out, uint64(len(n)))
		out = append(out, n...)
		out = binary.AppendUvarint(out, uint64(len(s[n])))
		out = append(out, s[n]...)
	}
	return out
}

// LoadBuckets implements odometer.AggregationTx. Rows of hours past the
// newest hour ever written cannot exist and are not looked up.
func (t *aggTx) LoadBuckets(keys []odometer.BucketKey) (map[odometer.BucketKey][]byte, error) {
	maxHour, err := t.meta("bucket_max_hour")
	if err != nil {
		return nil, storeError("load buckets", err)
	}
	want := map[hourKey]bool{}
	for _, k := range keys {
		if k.Hour <= maxHour {
			want[hourKey{k.CustomerID, k.Hour}] = true
		}
	}
	rows, err := t.loadRows(want)
	if err != nil {
		return nil, err
	}
	if t.rows == nil {
		t.rows = map[hourKey]sections{}
	}
	for k := range want {
		t.rows[k] = rows[k] // nil: known not to exist
	}
	out := make(map[odometer.BucketKey][]byte, len(keys))
	for _, k := range keys {
		if b, ok := rows[hourKey{k.CustomerID, k.Hour}][k.EventType]; ok {
			out[k] = b
		}
	}
	return out, nil
}

// loadRows reads the rows named, in multi-row statements. The customers
// with no row at all (as in a first run) are found first, with one look-up
// each rather than one for each of their hours.
func (t *aggTx) loadRows(want map[hourKey]bool) (map[hourKey]sections, error) {
	customers := map[string]bool{}
	for k := range want {
		customers[k.customer] = false
	}
	if err := t.existing("buckets", customers); err != nil {
		return nil, storeError("load buckets", err)
	}
	keys := make([]hourKey, 0, len(want))
	for k := range want {
		if customers[k.customer] {
			keys = append(keys, k)
		}
	}
	sortHourKeys(keys)
	out := make(map[hourKey]sections, len(keys))
	for len(keys) > 0 {
		n := min(len(keys), chunk)
		st, err := t.stmt(`SELECT customer_id, hour, data FROM buckets WHERE (customer_id, hour) IN (VALUES ` + placeholders(n, 2) + `)`)
		if err != nil {
			return nil, storeError("load buckets", err)
		}
		args := make([]any, 0, 2*n)
		for _, k := range keys[:n] {
			args = append(args, k.customer, k.hour)
		}
		keys = keys[n:]
		rows, err := st.QueryContext(t.ctx, args...)
		if err != nil {
			return nil, storeError("load buckets", err)
		}
		for rows.Next() {
			var k hourKey
			var b []byte
			if err := rows.Scan(&k.customer, &k.hour, &b); err != nil {
				rows.Close()
				return nil, storeError("load buckets", err)
			}
			secs, err := decodeSections(b)
			if err != nil {
				rows.Close()
				return nil, storeError("load buckets", err)
			}
			out[k] = secs
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, storeError("load buckets", err)
		}
	}
	return out, nil
}

// SaveBuckets implements odometer.AggregationTx: each row is read, its
// sections replaced, and written back.
func (t *aggTx) SaveBuckets(buckets map[odometer.BucketKey][]byte) error {
	maxHour, err := t.meta("bucket_max_hour")
	if err != nil {
		return storeError("save buckets", err)
	}
	want := map[hourKey]bool{}
	rows := map[hourKey]sections{}
	newMax := maxHour
	for k := range buckets {
		hk := hourKey{k.CustomerID, k.Hour}
		if secs, ok := t.rows[hk]; ok {
			rows[hk] = secs // read by LoadBuckets
		} else if k.Hour <= maxHour {
			want[hk] = true
		}
		newMax = max(newMax, k.Hour)
	}
	more, err := t.loadRows(want)
	if err != nil {
		return err
	}
	for k, secs := range more {
		rows[k] = secs
	}
	t.rows = nil
	for k, b := range buckets {
		hk := hourKey{k.CustomerID, k.Hour}
		secs := rows[hk]
		if secs == nil {
			secs = sections{}
			rows[hk] = secs
		}
		if len(b) == 0 {
			delete(secs, k.EventType)
		} else {
			secs[k.EventType] = b
		}
	}
	// In the order new rows are appended (see sortHourKeys).
	keys := make([]hourKey, 0, len(rows))
	for k, secs := range rows {
		if len(secs) == 0 {
			if _, err := t.tx.ExecContext(t.ctx, `DELETE FROM buckets WHERE customer_id = ? AND hour = ?`, k.customer, k.hour); err != nil {
				return storeError("save buckets", err)
			}
			continue
		}
		keys = append(keys, k)
	}
	sortHourKeys(keys)
	for len(keys) > 0 {
		n := min(len(keys), chunk)
		st, err := t.stmt(`INSERT INTO buckets (customer_id, hour, data) VALUES ` + placeholders(n, 3) + `
			ON CONFLICT (customer_id, hour) DO UPDATE SET data = excluded.data`)
		if err != nil {
			return storeError("save buckets", err)
		}
		args := make([]any, 0, 3*n)
		for _, k := range keys[:n] {
			args = append(args, k.customer, k.hour, rows[k].encode())
		}
		keys = keys[n:]
		if _, err := st.ExecContext(t.ctx, args...); err != nil {
			return storeError("save buckets", err)
		}
	}
	if newMax > maxHour {
		return t.setMeta("bucket_max_hour", newMax)
	}
	return nil
}

// sortHourKeys sorts keys by hour, then customer: the order in which new
// rows are appended, so that the rows of one hour sit side by side (see
// migration 4).
func sortHourKeys(keys []hourKey) {
	slices.SortFunc(keys, func(a, b hourKey) int {
		return cmp.Or(cmp.Compare(a.hour, b.hour), strings.Compare(a.customer, b.customer))
	})
}

// LoadCustomerBuckets implements odometer.AggregationTx.
func (t *aggTx) LoadCustomerBuckets(customerID string, fromHour, toHour int64) (map[odometer.BucketKey][]byte, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT hour, data FROM buckets WHERE customer_id = ? AND hour BETWEEN ? AND ?`,
		customerID, fromHour, toHour)
	if err != nil {
		return nil, storeError("load buckets", err)
	}
	defer rows.Close()
	out := map[odometer.BucketKey][]byte{}
	for rows.Next() {
		var hour int64
		var b []byte
		if err := rows.Scan(&hour, &b); err != nil {
			return nil, storeError("load buckets", err)
		}
		secs, err := decodeSections(b)
		if err != nil {
			return nil, storeError("load buckets", err)
		}
		for typ, s := range secs {
			out[odometer.BucketKey{CustomerID: customerID, EventType: typ, Hour: hour}] = s
		}
	}
	return out, storeError("load buckets", rows.Err())
}

// existing sets customers[c] for each customer c that may have a row in
// table: those that have one, or, when a sample shows that most customers
// have rows (the usual run, after the first), every customer, since then
// the look-ups would save nothing.
func (t *aggTx) existing(table string, customers map[string]bool) error {
	list := make([]string, 0, len(customers))
	for c := range customers {
		list = append(list, c)
	}
	if len(list) > 2*sampleCustomers {
		sample := map[string]bool{}
		for _, c := range list[:sampleCustomers] {
			sample[c] = false
		}
		if err := t.lookupCustomers(table, list[:sampleCustomers], sample); err != nil {
			return err
		}
		found := 0
		for _, ok := range sample {
			if ok {
				found++
			}
		}
		if found*2 >= sampleCustomers {
			for c := range customers {
				customers[c] = true
			}
			return nil
		}
	}
	return t.lookupCustomers(table, list, customers)
}

// sampleCustomers is how many customers existing looks up first.
const sampleCustomers = 64

// lookupCustomers sets customers[c] for each c of list with a row in table.
func (t *aggTx) lookupCustomers(table string, list []string, customers map[string]bool) error {
	for len(list) > 0 {
		n := min(len(list), 4*chunk)
		st, err := t.stmt(`SELECT DISTINCT customer_id FROM ` + table + ` WHERE customer_id IN (` + strings.TrimSuffix(strings.Repeat("?,", n), ",") + `)`)
		if err != nil {
			return err
		}
		args := make([]any, n)
		for i, c := range list[:n] {
			args[i] = c
		}
		list = list[n:]
		rows, err := st.QueryContext(t.ctx, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return err
			}
			customers[c] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// meta reads an integer of the meta table; 0 when it is not there.
func (t *aggTx) meta(key string) (int64, error) {
	st, err := t.stmt(`SELECT coalesce((SELECT value FROM meta WHERE key = ?), -9223372036854775808)`)
	if err != nil {
		return 0, err
	}
	var v int64
	err = st.QueryRowContext(t.ctx, key).Scan(&v)
	return v, err
}

func (t *aggTx) setMeta(key string, v int64) error {
	_, err := t.tx.ExecContext(t.ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, v)
	return storeError("set meta", err)
}
