package odometer_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
)

// TestMarshalJSON_Instants: keys, deliveries and webhook statuses write
// every instant as toISOString does, three fraction digits in UTC, where
// encoding/json wrote nanoseconds (a key's createdAt) or dropped trailing
// zeros (lastAttemptAt 06:49:44.38Z).
func TestMarshalJSON_Instants(t *testing.T) {
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	nanos := time.Date(2026, 12, 3, 7, 49, 38, 378123456, oslo)
	tenths := time.Date(2026, 12, 3, 6, 49, 44, 380000000, time.UTC)
	whole := time.Date(2026, 12, 3, 6, 49, 44, 0, time.UTC)
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{"APIKey", &odometer.APIKey{ID: "key_1", Scope: odometer.ScopeRead, CustomerID: "c<1>", Prefix: "odo_ab", Hash: [32]byte{1},
			CreatedAt: nanos, LastUsedAt: &tenths},
			`{"id":"key_1","scope":"read","customerId":"c<1>","prefix":"odo_ab","createdAt":"2026-12-03T06:49:38.378Z","lastUsedAt":"2026-12-03T06:49:44.380Z"}`},
		{"APIKeyRevoked", odometer.APIKey{ID: "key_2", Scope: odometer.ScopeAdmin, Prefix: "odo_cd", CreatedAt: whole, RevokedAt: &whole},
			`{"id":"key_2","scope":"admin","prefix":"odo_cd","createdAt":"2026-12-03T06:49:44.000Z","revokedAt":"2026-12-03T06:49:44.000Z"}`},
		{"Delivery", &odometer.Delivery{ID: "msg_1", NotificationID: 7, Type: odometer.AggregationCompleted, AggregationID: "c_daily_20261203",
			CustomerID: "c", Revision: 1, Endpoint: "https://example.com/h", Status: odometer.DeliveryDelivered, Attempts: 2,
			NextAttemptAt: &nanos, LastAttemptAt: &tenths, DeliveredAt: &tenths, LastStatus: 200, CreatedAt: whole, Payload: []byte("{}")},
			`{"id":"msg_1","notificationId":7,"type":"aggregation.completed","aggregationId":"c_daily_20261203","customerId":"c","revision":1,` +
				`"endpoint":"https://example.com/h","status":"delivered","attempts":2,"lastStatus":200,` +
				`"nextAttemptAt":"2026-12-03T06:49:38.378Z","lastAttemptAt":"2026-12-03T06:49:44.380Z","deliveredAt":"2026-12-03T06:49:44.380Z","createdAt":"2026-12-03T06:49:44.000Z"}`},
		{"WebhookStatus", odometer.WebhookStatus{Delivered: true, Attempts: 1, DeliveredAt: &tenths, LastAttemptAt: &tenths},
			`{"delivered":true,"attempts":1,"deliveredAt":"2026-12-03T06:49:44.380Z","lastAttemptAt":"2026-12-03T06:49:44.380Z"}`},
		{"WebhookStatusEmpty", odometer.WebhookStatus{}, `{"delivered":false,"attempts":0}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := odometer.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Marshal:\n got %s\nwant %s", got, tt.want)
			}
		})
	}

	t.Run("ReadBack", func(t *testing.T) {
		// The command line's client reads them with encoding/json.
		ms := time.Date(2026, 12, 3, 6, 49, 44, 380000000, time.UTC)
		in := odometer.Delivery{ID: "msg_1", Status: odometer.DeliveryPending, CreatedAt: ms, LastAttemptAt: &ms}
		b, err := odometer.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out odometer.Delivery
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if !out.CreatedAt.Equal(ms) || out.LastAttemptAt == nil || !out.LastAttemptAt.Equal(ms) || out.ID != in.ID {
			t.Fatalf("read back %+v from %s", out, b)
		}
	})
}
