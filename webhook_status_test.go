package odometer_test

import (
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
)

func TestWebhookStatusOf(t *testing.T) {
	at := func(m int) *time.Time { v := time.Date(2026, 1, 14, 0, m, 0, 0, time.UTC); return &v }
	for _, tt := range []struct {
		name string
		ds   []odometer.Delivery
		want odometer.WebhookStatus
	}{
		{"None", nil, odometer.WebhookStatus{}},
		{"AllDelivered", []odometer.Delivery{
			{Status: odometer.DeliveryDelivered, Attempts: 1, DeliveredAt: at(1), LastAttemptAt: at(1)},
			{Status: odometer.DeliveryDelivered, Attempts: 3, DeliveredAt: at(5), LastAttemptAt: at(5), LastError: ""},
		}, odometer.WebhookStatus{Delivered: true, Attempts: 3, DeliveredAt: at(5), LastAttemptAt: at(5)}},
		{"OnePending", []odometer.Delivery{
			{Status: odometer.DeliveryDelivered, Attempts: 1, DeliveredAt: at(1), LastAttemptAt: at(1)},
			{Status: odometer.DeliveryPending, Attempts: 2, LastAttemptAt: at(2), LastError: "the endpoint answered 500"},
		}, odometer.WebhookStatus{Attempts: 2, LastAttemptAt: at(2), LastError: "the endpoint answered 500"}},
		{"LatestError", []odometer.Delivery{
			{Status: odometer.DeliveryFailed, Attempts: 10, LastAttemptAt: at(9), LastError: "timed out"},
			{Status: odometer.DeliveryPending, Attempts: 4, LastAttemptAt: at(3), LastError: "the endpoint answered 503"},
		}, odometer.WebhookStatus{Attempts: 10, LastAttemptAt: at(9), LastError: "timed out"}},
		{"DryRun", []odometer.Delivery{
			{Status: odometer.DeliveryDelivered, Attempts: 1, DeliveredAt: at(1), LastAttemptAt: at(1), DryRun: true},
		}, odometer.WebhookStatus{Delivered: true, Attempts: 1, DeliveredAt: at(1), LastAttemptAt: at(1), DryRun: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := odometer.WebhookStatusOf(tt.ds)
			eq := func(a, b *time.Time) bool { return (a == nil && b == nil) || (a != nil && b != nil && a.Equal(*b)) }
			if got.Delivered != tt.want.Delivered || got.Attempts != tt.want.Attempts || got.LastError != tt.want.LastError ||
				got.DryRun != tt.want.DryRun || !eq(got.DeliveredAt, tt.want.DeliveredAt) || !eq(got.LastAttemptAt, tt.want.LastAttemptAt) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
