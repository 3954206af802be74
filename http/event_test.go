package http

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// refusal is a request the server must refuse without storing anything.
type refusal struct {
	name   string
	path   string // default /usage/api.calls
	body   string
	header []string
	status int
	// err is the exact error message; prefix, when err is "", its start.
	err, prefix string
}

func rfc3339(t time.Time) string { return t.Format(time.RFC3339Nano) }

func TestUsageEvent_Refused(t *testing.T) {
	long := strings.Repeat("x", 256)
	bigMeta := `{"k":"` + strings.Repeat("m", odometer.MaxMetadataBytes-7) + `"}` // one byte over
	tooLarge := `{"customerId":"c","value":1,"metadata":{"k":"` + strings.Repeat("m", DefaultMaxEventBytes) + `"}}`
	tests := []refusal{
		{name: "ErrMalformedJSON", body: `{customerId: "c", "value": 1}`, status: 400, prefix: "Invalid JSON"},
		{name: "ErrTruncatedJSON", body: `{"customerId": "c", "value": 1`, status: 400, prefix: "Invalid JSON"},
		{name: "ErrTruncatedString", body: `{"customerId": "c`, status: 400, prefix: "Invalid JSON"},
		{name: "ErrTrailingObject", body: `{"customerId": "c", "value": 1} {"customerId": "d", "value": 2}`, status: 400, prefix: "Invalid JSON"},
		{name: "ErrTrailingGarbage", body: `{"customerId": "c", "value": 1}x`, status: 400, prefix: "Invalid JSON"},
		{name: "ErrEmptyBody", body: ``, status: 400, prefix: "Request body is empty"},
		{name: "ErrBlankBody", body: " \r\n\t", status: 400, prefix: "Request body is empty"},
		{name: "ErrArray", body: `[{"customerId": "c", "value": 1}]`, status: 400, prefix: "Request body must be a JSON object"},
		{name: "ErrString", body: `"c"`, status: 400, prefix: "Request body must be a JSON object"},
		{name: "ErrNumber", body: `1`, status: 400, prefix: "Request body must be a JSON object"},
		{name: "ErrNull", body: `null`, status: 400, err: "customerId is required"},
		{name: "ErrDuplicateKey", body: `{"customerId": "a", "value": 1, "customerId": "b"}`, status: 400, err: `Request body has the key "customerId" more than once`},
		{name: "ErrDuplicateEscapedKey", body: `{"value": 1, "customerId": "a", "\u0076alue": 2}`, status: 400, err: `Request body has the key "value" more than once`},
		{name: "ErrKeyCase", body: `{"CUSTOMERID": "c", "value": 1}`, status: 400, err: "customerId is required"},
		{name: "ErrValueKeyCase", body: `{"customerId": "c", "Value": 1}`, status: 400, err: "value must be a number"},
		{name: "ErrCustomerLoneSurrogate", body: `{"customerId": "a\ud800", "value": 1}`, status: 400, err: "customerId must be valid UTF-8 without control characters"},
		{name: "ErrIDLoneSurrogate", body: `{"customerId": "c", "value": 1, "id": "\udc00x"}`, status: 400, err: "id must be valid UTF-8 without control characters"},
		{name: "ErrBodyTooLarge", body: tooLarge, status: 413, prefix: "Request body too large"},
		{name: "ErrInvalidUTF8", body: "{\"customerId\": \"c\xff\", \"value\": 1}", status: 400, err: "Request body must be valid UTF-8"},

		{name: "ErrValueMissing", body: `{"customerId": "c"}`, status: 400, err: "value must be a number"},
		{name: "ErrValueString", body: `{"customerId": "c", "value": "1"}`, status: 400, err: "value must be a number"},
		{name: "ErrValueNull", body: `{"customerId": "c", "value": null}`, status: 400, err: "value must be a number"},
		{name: "ErrValueBool", body: `{"customerId": "c", "value": true}`, status: 400, err: "value must be a number"},
		{name: "ErrValueObject", body: `{"customerId": "c", "value": {"n": 1}}`, status: 400, err: "value must be a number"},
		{name: "ErrValueArray", body: `{"customerId": "c", "value": [1]}`, status: 400, err: "value must be a number"},
		{name: "ErrValueNaN", body: `{"customerId": "c", "value": NaN}`, status: 400, prefix: "Invalid JSON"},
		{name: "ErrValueInfinityToken", body: `{"customerId": "c", "value": Infinity}`, status: 400, prefix: "Invalid JSON"},
		{name: "ErrValueInfinity", body: `{"customerId": "c", "value": "Infinity"}`, status: 400, err: "value must be a number"},
		{name: "ErrValueNaNString", body: `{"customerId": "c", "value": "NaN"}`, status: 400, err: "value must be a number"},
		{name: "ErrValueOverflow", body: `{"customerId": "c", "value": 1e400}`, status: 400, err: "value must be a number"},
		{name: "ErrValueOverMax", body: `{"customerId": "c", "value": 1.7976931348623157e308}`, status: 400, err: "value must be a number"},
		{name: "ErrValueNegativeOverflow", body: `{"customerId": "c", "value": -1e400}`, status: 400, err: "value must be a number"},
		{name: "ErrValueHex", body: `{"customerId": "c", "value": 0x10}`, status: 400, prefix: "Invalid JSON"},

		{name: "ErrCustomerIDMissing", body: `{"value": 1}`, status: 400, err: "customerId is required"},
		{name: "ErrCustomerIDEmpty", body: `{"customerId": "", "value": 1}`, status: 400, err: "customerId is required"},
		{name: "ErrCustomerIDNull", body: `{"customerId": null, "value": 1}`, status: 400, err: "customerId is required"},
		{name: "ErrCustomerIDTooLong", body: `{"customerId": "` + long + `", "value": 1}`, status: 400, err: "customerId must be at most 255 bytes"},
		{name: "ErrCustomerIDControl", body: `{"customerId": "a\u0001b", "value": 1}`, status: 400, err: "customerId must be valid UTF-8 without control characters"},
		{name: "ErrCustomerIDNewline", body: `{"customerId": "a\nb", "value": 1}`, status: 400, err: "customerId must be valid UTF-8 without control characters"},
		{name: "ErrCustomerIDNUL", body: `{"customerId": "a\u0000", "value": 1}`, status: 400, err: "customerId must be valid UTF-8 without control characters"},
		{name: "ErrCustomerIDC1", body: `{"customerId": "a\u0085b", "value": 1}`, status: 400, err: "customerId must be valid UTF-8 without control characters"},
		{name: "ErrCustomerIDRawTab", body: "{\"customerId\": \"a\tb\", \"value\": 1}", status: 400, prefix: "Invalid JSON"},
		{name: "ErrCustomerIDNumber", body: `{"customerId": 123, "value": 1}`, status: 400, err: "customerId must be a string"},
		{name: "ErrCustomerIDObject", body: `{"customerId": {"id": "c"}, "value": 1}`, status: 400, err: "customerId must be a string"},

		{name: "ErrUnknownEventType", path: "/usage/nope", body: `{"customerId": "c", "value": 1}`, status: 400, err: fmt.Sprintf(errUnknownType, "nope")},
		{name: "ErrUnknownEventTypeFirst", path: "/usage/nope", body: `{}`, status: 400, err: fmt.Sprintf(errUnknownType, "nope")},
		{name: "ErrEventTypeCase", path: "/usage/API.CALLS", body: `{"customerId": "c", "value": 1}`, status: 400, err: fmt.Sprintf(errUnknownType, "API.CALLS")},

		{name: "ErrMetadataArray", body: `{"customerId": "c", "value": 1, "metadata": [1]}`, status: 400, err: "metadata must be an object"},
		{name: "ErrMetadataString", body: `{"customerId": "c", "value": 1, "metadata": "x"}`, status: 400, err: "metadata must be an object"},
		{name: "ErrMetadataNumber", body: `{"customerId": "c", "value": 1, "metadata": 1}`, status: 400, err: "metadata must be an object"},
		{name: "ErrMetadataTooLarge", body: `{"customerId": "c", "value": 1, "metadata": ` + bigMeta + `}`, status: 400, err: "metadata must be at most 16384 bytes"},

		{name: "ErrTimestampUnparsable", body: `{"customerId": "c", "value": 1, "timestamp": "yesterday"}`, status: 400, err: "timestamp must be an RFC 3339 date-time, such as 2026-01-13T10:00:00Z"},
		{name: "ErrTimestampNumber", body: `{"customerId": "c", "value": 1, "timestamp": 1768300000}`, status: 400, err: "timestamp must be an RFC 3339 date-time, such as 2026-01-13T10:00:00Z"},
		{name: "ErrTimestampDate", body: `{"customerId": "c", "value": 1, "timestamp": "2026-01-13"}`, status: 400, err: "timestamp must be an RFC 3339 date-time, such as 2026-01-13T10:00:00Z"},
		{name: "ErrTimestampNoZone", body: `{"customerId": "c", "value": 1, "timestamp": "2026-01-13T10:00:00"}`, status: 400, err: "timestamp must be an RFC 3339 date-time, such as 2026-01-13T10:00:00Z"},
		{name: "ErrTimestampFuture", body: `{"customerId": "c", "value": 1, "timestamp": "` + rfc3339(testNow.Add(5*time.Minute+time.Millisecond)) + `"}`, status: 400, err: "timestamp must not be more than 5 minutes in the future"},
		{name: "ErrTimestampFarFuture", body: `{"customerId": "c", "value": 1, "timestamp": "9999-12-31T23:59:59Z"}`, status: 400, err: "timestamp must not be more than 5 minutes in the future"},
		{name: "ErrTimestampTooOld", body: `{"customerId": "c", "value": 1, "timestamp": "` + rfc3339(testNow.Add(-35*24*time.Hour-time.Millisecond)) + `"}`, status: 400, err: "timestamp must not be older than maxEventAge (35d)"},
		{name: "ErrTimestampEpoch", body: `{"customerId": "c", "value": 1, "timestamp": "1970-01-01T00:00:00Z"}`, status: 400, err: "timestamp must not be older than maxEventAge (35d)"},

		{name: "ErrIDTooLong", body: `{"customerId": "c", "value": 1, "id": "` + long + `"}`, status: 400, err: "id must be at most 255 bytes"},
		{name: "ErrIDEmpty", body: `{"customerId": "c", "value": 1, "id": ""}`, status: 400, err: "id must be a non-empty string"},
		{name: "ErrIDNumber", body: `{"customerId": "c", "value": 1, "id": 7}`, status: 400, err: "id must be a string"},
		{name: "ErrIDControl", body: `{"customerId": "c", "value": 1, "id": "a\u001fb"}`, status: 400, err: "id must be valid UTF-8 without control characters"},
		{name: "ErrIDHeaderDiffers", body: `{"customerId": "c", "value": 1, "id": "a"}`, header: []string{"Idempotency-Key", "b"}, status: 400, err: "id and the Idempotency-Key header differ"},
		{name: "ErrIdempotencyKeyTooLong", body: `{"customerId": "c", "value": 1}`, header: []string{"Idempotency-Key", long}, status: 400, err: "Idempotency-Key: id must be at most 255 bytes"},
	}
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				path := tt.path
				if path == "" {
					path = "/usage/api.calls"
				}
				r := srv.Do(t, "POST", path, srv.IngestKey, tt.body, tt.header...)
				checkRefusal(t, r, tt.status, tt.err, tt.prefix)
				srv.mustCount(t, 0)
			})
		}
	})
}

// checkRefusal checks the status and the error message of a refusal.
func checkRefusal(tb testing.TB, r *Response, status int, err, prefix string) {
	tb.Helper()
	if got, want := r.Status, status; got != want {
		tb.Fatalf("status %d, want %d: %s", got, want, r.Body)
	}
	switch got := r.Error(); {
	case err != "" && got != err:
		tb.Fatalf("error %q, want %q", got, err)
	case err == "" && !strings.HasPrefix(got, prefix):
		tb.Fatalf("error %q, want it to start with %q", got, prefix)
	}
}

func TestUsageEvent_Captured(t *testing.T) {
	exactMeta := `{"k":"` + strings.Repeat("m", odometer.MaxMetadataBytes-8) + `"}`
	tests := []struct {
		name      string
		eventType string
		body      string
		header    []string
		// customer, value, metadata and time are what must be stored.
		customer string
		value    float64
		metadata string
		time     time.Time
		// id is the id to expect, "" for a generated one.
		id string
	}{
		{name: "NoContentType", eventType: "api.calls", body: `{"customerId": "c1", "value": 1}`, customer: "c1", value: 1, metadata: `{}`, time: testNow},
		{name: "TextPlain", eventType: "api.calls", body: `{"customerId": "c2", "value": 2}`, header: []string{"Content-Type", "text/plain"}, customer: "c2", value: 2, metadata: `{}`, time: testNow},
		{name: "JSON", eventType: "api.calls", body: `{"customerId": "c3", "value": 3}`, header: []string{"Content-Type", "application/json"}, customer: "c3", value: 3, metadata: `{}`, time: testNow},
		{name: "Form", eventType: "api.calls", body: `{"customerId": "c4", "value": 4}`, header: []string{"Content-Type", "application/x-www-form-urlencoded"}, customer: "c4", value: 4, metadata: `{}`, time: testNow},
		{name: "Metadata", eventType: "storage.bytes", body: `{"customerId": "c5", "value": 5, "metadata": { "region" : "eu", "n": [1, 2] }}`, customer: "c5", value: 5, metadata: `{"region":"eu","n":[1,2]}`, time: testNow},
		{name: "MetadataNull", eventType: "storage.bytes", body: `{"customerId": "c6", "value": 6, "metadata": null}`, customer: "c6", value: 6, metadata: `{}`, time: testNow},
		{name: "MetadataAtLimit", eventType: "storage.bytes", body: `{"customerId": "c7", "value": 7, "metadata": ` + exactMeta + `}`, customer: "c7", value: 7, metadata: exactMeta, time: testNow},
		{name: "Timestamp", eventType: "response.time.ms", body: `{"customerId": "c8", "value": 8, "timestamp": "2026-01-12T23:59:59.999+01:00"}`, customer: "c8", value: 8, metadata: `{}`, time: time.Date(2026, 1, 12, 22, 59, 59, 999e6, time.UTC)},
		{name: "TimestampSubMillisecond", eventType: "response.time.ms", body: `{"customerId": "c9", "value": 9, "timestamp": "2026-01-13T10:00:00.123456789Z"}`, customer: "c9", value: 9, metadata: `{}`, time: time.Date(2026, 1, 13, 10, 0, 0, 123e6, time.UTC)},
		{name: "TimestampFiveMinutesAhead", eventType: "api.calls", body: `{"customerId": "c10", "value": 10, "timestamp": "` + rfc3339(testNow.Add(5*time.Minute)) + `"}`, customer: "c10", value: 10, metadata: `{}`, time: testNow.Add(5 * time.Minute)},
		{name: "TimestampMaxEventAge", eventType: "api.calls", body: `{"customerId": "c11", "value": 11, "timestamp": "` + rfc3339(testNow.Add(-35*24*time.Hour)) + `"}`, customer: "c11", value: 11, metadata: `{}`, time: testNow.Add(-35 * 24 * time.Hour)},
		{name: "TimestampNull", eventType: "api.calls", body: `{"customerId": "c12", "value": 12, "timestamp": null}`, customer: "c12", value: 12, metadata: `{}`, time: testNow},
		{name: "CustomerIDAtLimit", eventType: "api.calls", body: `{"customerId": "` + strings.Repeat("c", 255) + `", "value": 13}`, customer: strings.Repeat("c", 255), value: 13, metadata: `{}`, time: testNow},
		{name: "CustomerIDUnicode", eventType: "api.calls", body: `{"customerId": "kunde_\u00f8_東京", "value": 14}`, customer: "kunde_ø_東京", value: 14, metadata: `{}`, time: testNow},
		{name: "IDAtLimit", eventType: "api.calls", body: `{"customerId": "c15", "value": 15, "id": "` + strings.Repeat("i", 255) + `"}`, customer: "c15", value: 15, metadata: `{}`, time: testNow, id: strings.Repeat("i", 255)},
		{name: "IdempotencyKey", eventType: "api.calls", body: `{"customerId": "c16", "value": 16}`, header: []string{"Idempotency-Key", "idem-16"}, customer: "c16", value: 16, metadata: `{}`, time: testNow, id: "idem-16"},
		{name: "IDAndSameHeader", eventType: "api.calls", body: `{"customerId": "c17", "value": 17, "id": "idem-17"}`, header: []string{"Idempotency-Key", "idem-17"}, customer: "c17", value: 17, metadata: `{}`, time: testNow, id: "idem-17"},
		{name: "ValueZero", eventType: "api.calls", body: `{"customerId": "c18", "value": 0}`, customer: "c18", value: 0, metadata: `{}`, time: testNow},
		{name: "ValueNegative", eventType: "api.calls", body: `{"customerId": "c19", "value": -2.5e-3}`, customer: "c19", value: -0.0025, metadata: `{}`, time: testNow},
		{name: "ValueLarge", eventType: "api.calls", body: `{"customerId": "c20", "value": -1e300}`, customer: "c20", value: -1e300, metadata: `{}`, time: testNow},
		{name: "UnknownFieldsIgnored", eventType: "api.calls", body: `{"customerId": "c21", "value": 21, "extra": {"a": 1}}`, customer: "c21", value: 21, metadata: `{}`, time: testNow},
		{name: "PaddedToLimit", eventType: "api.calls", body: `{"customerId": "c22", "value": 22}` + strings.Repeat(" ", DefaultMaxEventBytes-len(`{"customerId": "c22", "value": 22}`)), customer: "c22", value: 22, metadata: `{}`, time: testNow},
	}
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := srv.MustDo(t, http.StatusCreated, "POST", "/usage/"+tt.eventType, srv.IngestKey, tt.body, tt.header...)
				m := r.Map(t)
				id, _ := m["id"].(string)
				want := map[string]any{"message": "Event captured", "eventType": tt.eventType, "customerId": tt.customer, "id": id}
				if !reflect.DeepEqual(m, want) {
					t.Fatalf("body %v, want %v", m, want)
				}
				switch {
				case tt.id != "" && id != tt.id:
					t.Fatalf("id %q, want %q", id, tt.id)
				case tt.id == "" && !strings.HasPrefix(id, "evt_"):
					t.Fatalf("generated id %q, want it to start with evt_", id)
				}
				srv.mustCount(t, i+1)
				e := srv.Events(t)[0]
				if got, want := e.ID, id; got != want {
					t.Fatalf("stored id %q, want %q", got, want)
				}
				if got, want := e.CustomerID, tt.customer; got != want {
					t.Fatalf("stored customerId %q, want %q", got, want)
				}
				if got, want := e.EventType, tt.eventType; got != want {
					t.Fatalf("stored eventType %q, want %q", got, want)
				}
				if got, want := e.Value, tt.value; got != want {
					t.Fatalf("stored value %v, want %v", got, want)
				}
				if !e.Time.Equal(tt.time) {
					t.Fatalf("stored time %v, want %v", e.Time, tt.time)
				}
				if !e.ReceivedAt.Equal(testNow) {
					t.Fatalf("stored receivedAt %v, want %v", e.ReceivedAt, testNow)
				}
				// The metadata as GET /events shows it.
				var got []struct {
					ID       string          `json:"_id"`
					Metadata json.RawMessage `json:"metadata"`
				}
				srv.MustDo(t, http.StatusOK, "GET", "/events?limit=1", srv.ReadKey, "").Decode(t, &got)
				if len(got) != 1 || got[0].ID != id {
					t.Fatalf("GET /events: %+v, want event %s", got, id)
				}
				if got, want := string(got[0].Metadata), tt.metadata; got != want {
					t.Fatalf("metadata %s, want %s", got, want)
				}
			})
		}
	})
}

func TestUsageEvent_Idempotency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		const first = `{"customerId": "cust_1", "value": 5, "metadata": {"a": 1}, "id": "evt-1", "timestamp": "2026-01-13T09:00:00Z"}`
		m := srv.MustDo(t, http.StatusCreated, "POST", "/usage/api.calls", srv.IngestKey, first).Map(t)
		if got, want := m["id"], "evt-1"; got != want {
			t.Fatalf("id %v, want %v", got, want)
		}

		t.Run("Duplicate", func(t *testing.T) {
			for _, body := range []string{
				first,
				// The same event, written differently.
				`{"id": "evt-1", "timestamp": "2026-01-13T10:00:00+01:00", "metadata": {"a":1}, "value": 5.0, "customerId": "cust_1"}`,
			} {
				m := srv.MustDo(t, http.StatusOK, "POST", "/usage/api.calls", srv.IngestKey, body).Map(t)
				want := map[string]any{"message": "Event already captured", "eventType": "api.calls", "customerId": "cust_1", "id": "evt-1", "duplicate": true}
				if !reflect.DeepEqual(m, want) {
					t.Fatalf("body %v, want %v", m, want)
				}
				srv.mustCount(t, 1)
			}
		})

		t.Run("ErrConflict", func(t *testing.T) {
			for _, tt := range []struct{ name, eventType, body string }{
				{"Value", "api.calls", `{"customerId": "cust_1", "value": 6, "metadata": {"a": 1}, "id": "evt-1", "timestamp": "2026-01-13T09:00:00Z"}`},
				{"Customer", "api.calls", `{"customerId": "cust_2", "value": 5, "metadata": {"a": 1}, "id": "evt-1", "timestamp": "2026-01-13T09:00:00Z"}`},
				{"EventType", "storage.bytes", `{"customerId": "cust_1", "value": 5, "metadata": {"a": 1}, "id": "evt-1", "timestamp": "2026-01-13T09:00:00Z"}`},
				{"Metadata", "api.calls", `{"customerId": "cust_1", "value": 5, "metadata": {"a": 2}, "id": "evt-1", "timestamp": "2026-01-13T09:00:00Z"}`},
				{"Timestamp", "api.calls", `{"customerId": "cust_1", "value": 5, "metadata": {"a": 1}, "id": "evt-1", "timestamp": "2026-01-13T09:00:01Z"}`},
				{"Header", "api.calls", `{"customerId": "cust_1", "value": 7}`},
			} {
				t.Run(tt.name, func(t *testing.T) {
					var hdr []string
					if tt.name == "Header" {
						hdr = []string{"Idempotency-Key", "evt-1"}
					}
					r := srv.Do(t, "POST", "/usage/"+tt.eventType, srv.IngestKey, tt.body, hdr...)
					checkRefusal(t, r, http.StatusConflict, `An event with id "evt-1" is already stored, or given earlier in this request, with a different body; nothing of this request was stored`, "")
					events := srv.Events(t)
					if got, want := len(events), 1; got != want {
						t.Fatalf("stored events: %d, want %d", got, want)
					}
					e := events[0]
					if e.ID != "evt-1" || e.Value != 5 || e.CustomerID != "cust_1" || e.EventType != "api.calls" || string(e.Metadata) != `{"a":1}` {
						t.Fatalf("stored event changed: %+v", e)
					}
				})
			}
		})

		t.Run("IdempotencyKey", func(t *testing.T) {
			const body = `{"customerId": "cust_3", "value": 1}`
			m := srv.MustDo(t, http.StatusCreated, "POST", "/usage/api.calls", srv.IngestKey, body, "Idempotency-Key", "req-42").Map(t)
			if got, want := m["id"], "req-42"; got != want {
				t.Fatalf("id %v, want %v", got, want)
			}
			// A retry a minute later is the same event: the time of
			// receipt is not part of what the client said.
			srv.SetNow(testNow.Add(time.Minute))
			defer srv.SetNow(testNow)
			m = srv.MustDo(t, http.StatusOK, "POST", "/usage/api.calls", srv.IngestKey, body, "Idempotency-Key", "req-42").Map(t)
			if got, want := m["duplicate"], true; got != want {
				t.Fatalf("duplicate %v, want %v", got, want)
			}
			// The header and the body name one id space.
			srv.MustDo(t, http.StatusOK, "POST", "/usage/api.calls", srv.IngestKey, `{"customerId": "cust_3", "value": 1, "id": "req-42"}`)
			srv.mustCount(t, 2)
		})

		t.Run("NoIDNoDeduplication", func(t *testing.T) {
			const body = `{"customerId": "cust_4", "value": 1}`
			a := srv.MustDo(t, http.StatusCreated, "POST", "/usage/api.calls", srv.IngestKey, body).Map(t)
			b := srv.MustDo(t, http.StatusCreated, "POST", "/usage/api.calls", srv.IngestKey, body).Map(t)
			if a["id"] == b["id"] {
				t.Fatalf("two events without an id share id %v", a["id"])
			}
			srv.mustCount(t, 4)
		})
	})
}

// batchOf returns a batch of n valid api.calls events for customer.
func batchOf(n int, customer string, f func(i int) string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		extra := ""
		if f != nil {
			extra = f(i)
		}
		fmt.Fprintf(&b, `{"eventType": "api.calls", "customerId": %q, "value": %d%s}`, customer, i, extra)
	}
	b.WriteByte(']')
	return b.String()
}

func TestUsageBatch_Refused(t *testing.T) {
	type verr struct {
		Index  int      `json:"index"`
		Errors []string `json:"errors"`
	}
	tests := []struct {
		name   string
		body   string
		status int
		err    string
		prefix string
		// For a 422: the validation errors and the valid count.
		verrs []verr
		valid int
	}{
		{name: "ErrEmptyBody", body: ``, status: 400, prefix: "Request body is empty"},
		{name: "ErrMalformedJSON", body: `[{"eventType": "api.calls"`, status: 400, prefix: "Invalid JSON"},
		{name: "ErrTrailingData", body: `[] []`, status: 400, prefix: "Invalid JSON"},
		{name: "ErrObject", body: `{"eventType": "api.calls", "customerId": "c", "value": 1}`, status: 400, prefix: "Request body must be a JSON array"},
		{name: "ErrEmptyBatch", body: `[]`, status: 400, err: "Batch is empty: send an array of 1 to 1000 events"},
		{
			name: "ErrDuplicateKey", status: 422, err: "Validation failed for some events",
			body:  `[{"eventType": "api.calls", "customerId": "a", "value": 1}, {"eventType": "api.calls", "customerId": "a", "customerId": "b", "value": 1}]`,
			verrs: []verr{{1, []string{`event has the key "customerId" more than once`}}}, valid: 1,
		},
		{name: "ErrTooLarge", body: `[` + strings.Repeat(" ", DefaultMaxBatchBytes) + `]`, status: 413, prefix: "Request body too large"},
		{
			name: "ErrInvalidMembers", status: 422, err: "Validation failed for some events",
			body: `[
				{"eventType": "api.calls", "customerId": "a", "value": 1},
				{"eventType": "api.calls", "value": 1},
				{"eventType": "api.calls", "customerId": "a", "value": 1},
				"not an event",
				{"eventType": "nope", "customerId": "a", "value": 1},
				{"customerId": 5, "value": "1", "timestamp": "later"}
			]`,
			verrs: []verr{
				{1, []string{"customerId is required"}},
				{3, []string{"event must be a JSON object"}},
				{4, []string{fmt.Sprintf(errUnknownType, "nope")}},
				{5, []string{"eventType is required", "customerId must be a string", "value must be a number", "timestamp must be an RFC 3339 date-time, such as 2026-01-13T10:00:00Z"}},
			},
			valid: 2,
		},
		{
			name: "ErrLastMemberInvalid", status: 422, err: "Validation failed for some events",
			body:  batchOf(999, "a", nil)[:len(batchOf(999, "a", nil))-1] + `, {"eventType": "api.calls", "customerId": "a", "value": 1e400}]`,
			verrs: []verr{{999, []string{"value must be a number"}}},
			valid: 999,
		},
		{
			name: "ErrMemberKinds", status: 422, err: "Validation failed for some events",
			body: `[1, null, [], true, "x", {"eventType": 1, "customerId": "a", "value": 1}]`,
			verrs: []verr{
				{0, []string{"event must be a JSON object"}},
				{1, []string{"event must be a JSON object"}},
				{2, []string{"event must be a JSON object"}},
				{3, []string{"event must be a JSON object"}},
				{4, []string{"event must be a JSON object"}},
				{5, []string{"eventType must be a string"}},
			},
		},
		{
			name: "ErrMemberFields", status: 422, err: "Validation failed for some events",
			body: `[
				{"eventType": "api.calls", "customerId": "a", "value": 1, "metadata": [1]},
				{"eventType": "api.calls", "customerId": "a", "value": 1, "id": ""},
				{"eventType": "api.calls", "customerId": "a", "value": 1, "timestamp": "` + rfc3339(testNow.Add(time.Hour)) + `"},
				{"eventType": "api.calls", "customerId": "` + strings.Repeat("x", 256) + `", "value": 1},
				{"eventType": "", "customerId": "a", "value": 1}
			]`,
			verrs: []verr{
				{0, []string{"metadata must be an object"}},
				{1, []string{"id must be a non-empty string"}},
				{2, []string{"timestamp must not be more than 5 minutes in the future"}},
				{3, []string{"customerId must be at most 255 bytes"}},
				{4, []string{"eventType is required"}},
			},
		},
	}
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := srv.Do(t, "POST", "/usagebatch", srv.IngestKey, tt.body)
				checkRefusal(t, r, tt.status, tt.err, tt.prefix)
				if tt.status == http.StatusUnprocessableEntity {
					var got struct {
						ValidationErrors []verr `json:"validationErrors"`
						ValidCount       *int   `json:"validCount"`
						InvalidCount     *int   `json:"invalidCount"`
					}
					r.Decode(t, &got)
					if !reflect.DeepEqual(got.ValidationErrors, tt.verrs) {
						t.Fatalf("validationErrors %+v, want %+v", got.ValidationErrors, tt.verrs)
					}
					if got.ValidCount == nil || *got.ValidCount != tt.valid {
						t.Fatalf("validCount %v, want %d", got.ValidCount, tt.valid)
					}
					if got.InvalidCount == nil || *got.InvalidCount != len(tt.verrs) {
						t.Fatalf("invalidCount %v, want %d", got.InvalidCount, len(tt.verrs))
					}
				}
				srv.mustCount(t, 0)
			})
		}

		t.Run("ErrTooManyEvents", func(t *testing.T) {
			r := srv.Do(t, "POST", "/usagebatch", srv.IngestKey, batchOf(1001, "a", nil))
			checkRefusal(t, r, http.StatusRequestEntityTooLarge, "Batch size exceeds maximum limit of 1000 events", "")
			want := map[string]any{"error": "Batch size exceeds maximum limit of 1000 events", "received": 1001.0, "maxAllowed": 1000.0}
			if got := r.Map(t); !reflect.DeepEqual(got, want) {
				t.Fatalf("body %v, want %v", got, want)
			}
			srv.mustCount(t, 0)
		})
	})
}

func TestUsageBatch_Captured(t *testing.T) {
	type captured struct {
		Message    string `json:"message"`
		Count      int    `json:"count"`
		Duplicates int    `json:"duplicates"`
	}
	post := func(t *testing.T, srv *TestServer, status int, body string) captured {
		t.Helper()
		var c captured
		r := srv.MustDo(t, status, "POST", "/usagebatch", srv.IngestKey, body)
		r.Decode(t, &c)
		if got, want := len(r.Map(t)), 3; got != want {
			t.Fatalf("body %s has %d fields, want %d", r.Body, got, want)
		}
		return c
	}
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		t.Run("OK", func(t *testing.T) {
			srv := MustOpenServer(t, open)
			body := `[
				{"eventType": "api.calls", "customerId": "a", "value": 1},
				{"eventType": "storage.bytes", "customerId": "b", "value": 2, "metadata": {"x": "y"}},
				{"eventType": "response.time.ms", "customerId": "c", "value": 3, "timestamp": "2026-01-13T09:00:00Z", "id": "r-3"}
			]`
			if got, want := post(t, srv, http.StatusCreated, body), (captured{"Events captured", 3, 0}); got != want {
				t.Fatalf("answer %+v, want %+v", got, want)
			}
			events := srv.Events(t)
			if got, want := len(events), 3; got != want {
				t.Fatalf("stored %d, want %d", got, want)
			}
			// Newest first: the batch's order, reversed.
			for i, want := range []struct {
				typ, customer string
				value         float64
			}{{"response.time.ms", "c", 3}, {"storage.bytes", "b", 2}, {"api.calls", "a", 1}} {
				e := events[i]
				if e.EventType != want.typ || e.CustomerID != want.customer || e.Value != want.value {
					t.Fatalf("event %d: %+v, want %+v", i, e, want)
				}
			}
			if got, want := events[0].ID, "r-3"; got != want {
				t.Fatalf("id %q, want %q", got, want)
			}
			if got, want := string(events[1].Metadata), `{"x":"y"}`; got != want {
				t.Fatalf("metadata %s, want %s", got, want)
			}
		})

		t.Run("MaxBatch", func(t *testing.T) {
			srv := MustOpenServer(t, open)
			if got, want := post(t, srv, http.StatusCreated, batchOf(1000, "a", nil)), (captured{"Events captured", 1000, 0}); got != want {
				t.Fatalf("answer %+v, want %+v", got, want)
			}
			srv.mustCount(t, 1000)
		})

		t.Run("Duplicates", func(t *testing.T) {
			srv := MustOpenServer(t, open)
			body := `[
				{"eventType": "api.calls", "customerId": "a", "value": 1, "id": "d-1"},
				{"eventType": "api.calls", "customerId": "a", "value": 1, "id": "d-1"},
				{"eventType": "api.calls", "customerId": "a", "value": 2, "id": "d-2"},
				{"eventType": "api.calls", "customerId": "a", "value": 3}
			]`
			if got, want := post(t, srv, http.StatusCreated, body), (captured{"Events captured", 4, 1}); got != want {
				t.Fatalf("first answer %+v, want %+v", got, want)
			}
			srv.mustCount(t, 3)
			// Across batches: the events with ids are not stored again.
			if got, want := post(t, srv, http.StatusCreated, body), (captured{"Events captured", 4, 3}); got != want {
				t.Fatalf("second answer %+v, want %+v", got, want)
			}
			srv.mustCount(t, 4)
			// Every member a duplicate: nothing new, 200.
			only := `[{"eventType": "api.calls", "customerId": "a", "value": 1, "id": "d-1"}, {"eventType": "api.calls", "customerId": "a", "value": 2, "id": "d-2"}]`
			if got, want := post(t, srv, http.StatusOK, only), (captured{"Events captured", 2, 2}); got != want {
				t.Fatalf("third answer %+v, want %+v", got, want)
			}
			srv.mustCount(t, 4)
			// A single event sees the batch's ids.
			srv.MustDo(t, http.StatusOK, "POST", "/usage/api.calls", srv.IngestKey, `{"customerId": "a", "value": 2, "id": "d-2"}`)
			srv.mustCount(t, 4)
		})

		t.Run("ErrConflictInBatch", func(t *testing.T) {
			srv := MustOpenServer(t, open)
			body := `[
				{"eventType": "api.calls", "customerId": "a", "value": 1, "id": "new-1"},
				{"eventType": "api.calls", "customerId": "a", "value": 1, "id": "c-1"},
				{"eventType": "api.calls", "customerId": "a", "value": 2, "id": "c-1"}
			]`
			r := srv.Do(t, "POST", "/usagebatch", srv.IngestKey, body)
			checkRefusal(t, r, http.StatusConflict, `An event with id "c-1" is already stored, or given earlier in this request, with a different body; nothing of this request was stored`, "")
			srv.mustCount(t, 0)
		})

		t.Run("ErrConflictAcrossBatches", func(t *testing.T) {
			srv := MustOpenServer(t, open)
			post(t, srv, http.StatusCreated, `[{"eventType": "api.calls", "customerId": "a", "value": 1, "id": "c-2"}]`)
			body := `[
				{"eventType": "api.calls", "customerId": "a", "value": 1, "id": "new-2"},
				{"eventType": "api.calls", "customerId": "a", "value": 9},
				{"eventType": "api.calls", "customerId": "a", "value": 2, "id": "c-2"}
			]`
			r := srv.Do(t, "POST", "/usagebatch", srv.IngestKey, body)
			checkRefusal(t, r, http.StatusConflict, `An event with id "c-2" is already stored, or given earlier in this request, with a different body; nothing of this request was stored`, "")
			events := srv.Events(t)
			if len(events) != 1 || events[0].ID != "c-2" || events[0].Value != 1 {
				t.Fatalf("stored %+v, want only c-2 with value 1", events)
			}
			// new-2 was not stored: it is new now.
			post(t, srv, http.StatusCreated, `[{"eventType": "api.calls", "customerId": "a", "value": 1, "id": "new-2"}]`)
			srv.mustCount(t, 2)
		})

		t.Run("IdempotencyKeyIgnored", func(t *testing.T) {
			// The header names one event; a batch has ids per member.
			srv := MustOpenServer(t, open)
			r := srv.MustDo(t, http.StatusCreated, "POST", "/usagebatch", srv.IngestKey, batchOf(2, "a", nil), "Idempotency-Key", "k")
			var c captured
			r.Decode(t, &c)
			if got, want := c, (captured{"Events captured", 2, 0}); got != want {
				t.Fatalf("answer %+v, want %+v", got, want)
			}
			srv.mustCount(t, 2)
		})
	})
}

// storedEvent is an event as GET /events shows it.
type storedEvent struct {
	ID         string          `json:"_id"`
	EventType  string          `json:"eventType"`
	CustomerID string          `json:"customerId"`
	Value      float64         `json:"value"`
	Metadata   json.RawMessage `json:"metadata"`
	ReceivedAt string          `json:"receivedAt"`
	Timestamp  string          `json:"timestamp"`
	Minute     string          `json:"minute"`
	Hour       string          `json:"hour"`
	Day        string          `json:"day"`
	Week       string          `json:"week"`
	Month      string          `json:"month"`
	Year       string          `json:"year"`
}

func ids(events []storedEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func TestEvents_Find(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		// Posted in this order; newest first is the reverse.
		seed := []struct{ id, typ, customer, ts string }{
			{"e1", "api.calls", "a", "2026-01-10T00:00:00Z"},
			{"e2", "storage.bytes", "a", "2026-01-11T12:00:00Z"},
			{"e3", "api.calls", "b", "2026-01-12T23:59:59.999Z"},
			{"e4", "api.calls", "a", "2026-01-13T00:00:00Z"},
			{"e5", "response.time.ms", "b", "2026-01-09T08:00:00Z"}, // late: older time, newer arrival
			{"e6", "api.calls", "a", "2026-01-13T10:29:00Z"},
		}
		for _, e := range seed {
			srv.MustPostEvent(t, e.typ, fmt.Sprintf(`{"customerId": %q, "value": 1, "id": %q, "timestamp": %q}`, e.customer, e.id, e.ts))
		}
		tests := []struct {
			name, query string
			want        []string
		}{
			{"All", "", []string{"e6", "e5", "e4", "e3", "e2", "e1"}},
			{"Customer", "customerId=a", []string{"e6", "e4", "e2", "e1"}},
			{"UnknownCustomer", "customerId=zz", []string{}},
			{"EventType", "eventType=api.calls", []string{"e6", "e4", "e3", "e1"}},
			{"CustomerAndType", "customerId=b&eventType=api.calls", []string{"e3"}},
			{"From", "from=2026-01-12T23:59:59.999Z", []string{"e6", "e4", "e3"}},
			{"FromDate", "from=2026-01-12", []string{"e6", "e4", "e3"}},
			{"To", "to=2026-01-11T12:00:00Z", []string{"e5", "e2", "e1"}},
			{"ToOffset", "to=2026-01-11T13:00:00%2B01:00", []string{"e5", "e2", "e1"}},
			{"FromTo", "from=2026-01-11&to=2026-01-13", []string{"e4", "e3", "e2"}},
			{"Limit", "limit=2", []string{"e6", "e5"}},
			{"LimitMax", "limit=1000", []string{"e6", "e5", "e4", "e3", "e2", "e1"}},
			{"Everything", "customerId=a&eventType=api.calls&from=2026-01-10T00:00:01Z&to=2026-01-13T10:00:00Z&limit=1", []string{"e4"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var got []storedEvent
				srv.MustDo(t, http.StatusOK, "GET", "/events?"+tt.query, srv.ReadKey, "").Decode(t, &got)
				if got, want := ids(got), tt.want; !slices.Equal(got, want) {
					t.Fatalf("ids %q, want %q", got, want)
				}
			})
		}

		for _, tt := range []struct{ name, query, err string }{
			{"ErrLimitZero", "limit=0", "limit must be a whole number from 1 to 1000"},
			{"ErrLimitNegative", "limit=-1", "limit must be a whole number from 1 to 1000"},
			{"ErrLimitTooLarge", "limit=1001", "limit must be a whole number from 1 to 1000"},
			{"ErrLimitNotNumber", "limit=ten", "limit must be a whole number from 1 to 1000"},
			{"ErrLimitFraction", "limit=1.5", "limit must be a whole number from 1 to 1000"},
			{"ErrFrom", "from=yesterday", "from must be an ISO 8601 date or date-time, such as 2026-01-13 or 2026-01-13T10:00:00Z"},
			{"ErrTo", "to=13/01/2026", "to must be an ISO 8601 date or date-time, such as 2026-01-13 or 2026-01-13T10:00:00Z"},
			{"ErrCursor", "cursor=abc", "cursor is not valid"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := srv.Do(t, "GET", "/events?"+tt.query, srv.ReadKey, "")
				checkRefusal(t, r, http.StatusBadRequest, tt.err, "")
			})
		}
	})
}

func TestEvents_Paging(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		// 250 events of a and 40 of b, interleaved over three batches.
		var want []string
		n := 0
		for b := 0; b < 3; b++ {
			var members []string
			for i := 0; i < 110 && n < 290; i++ {
				customer := "a"
				if n%7 == 3 && n/7 < 40 {
					customer = "b"
				}
				id := "p-" + strconv.Itoa(n)
				members = append(members, fmt.Sprintf(`{"eventType": "api.calls", "customerId": %q, "value": %d, "id": %q}`, customer, n, id))
				if customer == "a" {
					want = append(want, id)
				}
				n++
			}
			srv.MustDo(t, http.StatusCreated, "POST", "/usagebatch", srv.IngestKey, "["+strings.Join(members, ",")+"]")
		}
		slices.Reverse(want)
		if got, want := len(want), 250; got != want {
			t.Fatalf("seeded %d events of a, want %d", got, want)
		}

		for _, tt := range []struct {
			name  string
			limit string
			pages []int
		}{
			{"DefaultLimit", "", []int{100, 100, 50}},
			{"Limit100", "&limit=100", []int{100, 100, 50}},
			{"Limit125", "&limit=125", []int{125, 125}},
			{"Limit7", "&limit=7", nil},
			{"Limit1000", "&limit=1000", []int{250}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var got []string
				var pages []int
				seen := map[string]bool{}
				cursor := ""
				for i := 0; ; i++ {
					if i > 100 {
						t.Fatal("paging does not end")
					}
					q := "/events?customerId=a" + tt.limit
					if cursor != "" {
						q += "&cursor=" + cursor
					}
					r := srv.MustDo(t, http.StatusOK, "GET", q, srv.ReadKey, "")
					var page []storedEvent
					r.Decode(t, &page)
					for _, e := range page {
						if e.CustomerID != "a" {
							t.Fatalf("event %s of customer %s", e.ID, e.CustomerID)
						}
						if seen[e.ID] {
							t.Fatalf("event %s seen twice", e.ID)
						}
						seen[e.ID] = true
						got = append(got, e.ID)
					}
					pages = append(pages, len(page))
					cursor = r.Header.Get("X-Next-Cursor")
					if cursor == "" {
						break
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("paged through %d events, want the %d of a newest first:\ngot  %q\nwant %q", len(got), len(want), got, want)
				}
				if tt.pages != nil && !slices.Equal(pages, tt.pages) {
					t.Fatalf("pages %v, want %v", pages, tt.pages)
				}
			})
		}

		t.Run("NoCursorOnLastPage", func(t *testing.T) {
			r := srv.MustDo(t, http.StatusOK, "GET", "/events?customerId=b&limit=40", srv.ReadKey, "")
			var page []storedEvent
			r.Decode(t, &page)
			if got, want := len(page), 40; got != want {
				t.Fatalf("page of %d, want %d", got, want)
			}
			if c := r.Header.Get("X-Next-Cursor"); c != "" {
				t.Fatalf("X-Next-Cursor %q on the last page", c)
			}
		})
	})
}

func TestEvents_Fields(t *testing.T) {
	const config = `{
	  "events": {"api.calls": {"op": "sum"}},
	  "timezone": "America/New_York"
	}`
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServerConfig(t, open, config)
		now := time.Date(2026, 1, 1, 3, 2, 0, 0, time.UTC)
		srv.SetNow(now)
		tests := []struct {
			name string
			body string
			want storedEvent
		}{
			{
				// 03:00 UTC on New Year's Day is 22:00 on New Year's Eve
				// in New York: the day, month and year are 2025's, the ISO
				// week is 2026's first.
				name: "NewYearsEve",
				body: `{"customerId": "cust_ny", "value": 1.25, "id": "ny-1", "timestamp": "2026-01-01T03:00:00Z", "metadata": {"plan": "pro"}}`,
				want: storedEvent{
					ID: "ny-1", EventType: "api.calls", CustomerID: "cust_ny", Value: 1.25, Metadata: json.RawMessage(`{"plan":"pro"}`),
					ReceivedAt: "2026-01-01T03:02:00.000Z", Timestamp: "2026-01-01T03:00:00.000Z",
					Minute: "202512312200", Hour: "2025123122", Day: "20251231", Week: "202601", Month: "202512", Year: "2025",
				},
			},
			{
				name: "ReceivedTime",
				body: `{"customerId": "cust_ny", "value": 2, "id": "ny-2"}`,
				want: storedEvent{
					ID: "ny-2", EventType: "api.calls", CustomerID: "cust_ny", Value: 2, Metadata: json.RawMessage(`{}`),
					ReceivedAt: "2026-01-01T03:02:00.000Z", Timestamp: "2026-01-01T03:02:00.000Z",
					Minute: "202512312202", Hour: "2025123122", Day: "20251231", Week: "202601", Month: "202512", Year: "2025",
				},
			},
			{
				name: "Offset",
				body: `{"customerId": "cust_ny", "value": 3, "id": "ny-3", "timestamp": "2025-12-28T23:30:00-05:00"}`,
				want: storedEvent{
					ID: "ny-3", EventType: "api.calls", CustomerID: "cust_ny", Value: 3, Metadata: json.RawMessage(`{}`),
					ReceivedAt: "2026-01-01T03:02:00.000Z", Timestamp: "2025-12-29T04:30:00.000Z",
					Minute: "202512282330", Hour: "2025122823", Day: "20251228", Week: "202552", Month: "202512", Year: "2025",
				},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				srv.MustPostEvent(t, "api.calls", tt.body)
				r := srv.MustDo(t, http.StatusOK, "GET", "/events?limit=1", srv.ReadKey, "")
				var raw []map[string]json.RawMessage
				r.Decode(t, &raw)
				if len(raw) != 1 {
					t.Fatalf("%d events, want 1", len(raw))
				}
				var keys []string
				for k := range raw[0] {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				wantKeys := []string{"_id", "customerId", "day", "eventType", "hour", "metadata", "minute", "month", "receivedAt", "timestamp", "value", "week", "year"}
				if !slices.Equal(keys, wantKeys) {
					t.Fatalf("fields %q, want %q", keys, wantKeys)
				}
				var got []storedEvent
				r.Decode(t, &got)
				if !reflect.DeepEqual(got[0], tt.want) {
					t.Fatalf("event\n%+v, want\n%+v", got[0], tt.want)
				}
			})
		}
	})
}
