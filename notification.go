package odometer

import (
	"time"
)

// Notification types.
const (
	AggregationCompleted = "aggregation.completed"
	AggregationUpdated   = "aggregation.updated"
)

// Notification records that a webhook is due for an aggregation revision.
// It is recorded in the same transaction as the revision, so none is lost;
// the webhook outbox turns each into one delivery per endpoint.
type Notification struct {
	ID            int64
	Type          string
	AggregationID string
	CustomerID    string
	Revision      int
	// Payload is the webhook body, fixed when the revision is recorded.
	Payload   []byte
	CreatedAt time.Time
	// Endpoints are the webhook URLs it is due to: one delivery each.
	Endpoints []string
}

// WebhookPayload is the body of a webhook, as the template sends it.
type WebhookPayload struct {
	Type       string      `json:"type"`
	CustomerID string      `json:"customerId"`
	Period     Period      `json:"period"`
	Data       PayloadData `json:"data"`
	Created    int64       `json:"created"`
}

// PayloadData is the aggregation inside a webhook payload.
type PayloadData struct {
	PeriodStart string             `json:"periodStart"`
	PeriodEnd   string             `json:"periodEnd"`
	PeriodKey   string             `json:"periodKey"`
	Timestamp   string             `json:"timestamp"`
	Events      map[string]float64 `json:"events"`
	EventCounts map[string]int64   `json:"eventCounts"`
	// Groups holds the groups of each meter with groupBy.
	Groups map[string][]GroupValue `json:"groups,omitempty"`
	// Revision and Previous are sent with aggregation.updated only.
	Revision int     `json:"revision,omitempty"`
	Previous *Values `json:"previous,omitempty"`
}

// TimeFormat is how the API prints instants: UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// FormatTime prints t as the template does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// LastMilli returns the last millisecond before end, as periodEnd shows it.
func LastMilli(end time.Time) time.Time { return end.Add(-time.Millisecond) }

func newNotification(cfg *Config, a *Aggregation, v *Values, typ string, previous *Values, now time.Time) *Notification {
	p := WebhookPayload{
		Type:       typ,
		CustomerID: a.CustomerID,
		Period:     a.Period,
		Data: PayloadData{
			PeriodStart: FormatTime(a.PeriodStart),
			PeriodEnd:   FormatTime(LastMilli(a.PeriodEnd)),
			PeriodKey:   a.PeriodKey,
			Timestamp:   FormatTime(a.Timestamp),
			Events:      v.Events,
			EventCounts: v.EventCounts,
			Groups:      v.Groups,
		},
		Created: now.Unix(),
	}
	if typ == AggregationUpdated {
		p.Data.Revision = a.Revision
		p.Data.Previous = previous
	}
	// Written as JSON.stringify writes it: receivers may verify the
	// signature over the body parsed and written again by JavaScript.
	b, _ := Marshal(p)
	var endpoints []string
	for _, w := range cfg.Webhooks {
		if w.Enabled {
			endpoints = append(endpoints, w.URL)
		}
	}
	return &Notification{
		Endpoints:     endpoints,
		Type:          typ,
		AggregationID: a.ID(),
		CustomerID:    a.CustomerID,
		Revision:      a.Revision,
		Payload:       b,
		CreatedAt:     now.UTC(),
	}
}
