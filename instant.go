package odometer

import (
	"encoding/json"
	"time"
)

// Every instant Odometer writes, in the API, in webhooks and in the
// command line's JSON, is FormatTime's: UTC with exactly three fraction
// digits, as JavaScript's toISOString() writes it. encoding/json would
// write a time.Time with nanoseconds, or drop trailing zeros (06:49:44.38Z),
// so the types that hold instants write them here.

// optionalTime formats t, or returns nil for an absent instant.
func optionalTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := FormatTime(*t)
	return &s
}

// MarshalJSON writes the key with its instants by FormatTime. Its hash is
// never written.
func (k APIKey) MarshalJSON() ([]byte, error) {
	type fields APIKey // the fields without this method
	return json.Marshal(struct {
		fields
		// At a shallower depth, these hide the time.Time fields.
		CreatedAt  string  `json:"createdAt"`
		LastUsedAt *string `json:"lastUsedAt,omitempty"`
		RevokedAt  *string `json:"revokedAt,omitempty"`
	}{fields(k), FormatTime(k.CreatedAt), optionalTime(k.LastUsedAt), optionalTime(k.RevokedAt)})
}

// MarshalJSON writes the delivery with its instants by FormatTime.
func (d Delivery) MarshalJSON() ([]byte, error) {
	type fields Delivery
	return json.Marshal(struct {
		fields
		NextAttemptAt *string `json:"nextAttemptAt,omitempty"`
		LastAttemptAt *string `json:"lastAttemptAt,omitempty"`
		DeliveredAt   *string `json:"deliveredAt,omitempty"`
		CreatedAt     string  `json:"createdAt"`
	}{fields(d), optionalTime(d.NextAttemptAt), optionalTime(d.LastAttemptAt), optionalTime(d.DeliveredAt), FormatTime(d.CreatedAt)})
}

// MarshalJSON writes the status with its instants by FormatTime.
func (w WebhookStatus) MarshalJSON() ([]byte, error) {
	type fields WebhookStatus
	return json.Marshal(struct {
		fields
		DeliveredAt   *string `json:"deliveredAt,omitempty"`
		LastAttemptAt *string `json:"lastAttemptAt,omitempty"`
	}{fields(w), optionalTime(w.DeliveredAt), optionalTime(w.LastAttemptAt)})
}
