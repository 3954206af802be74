package http

import (
	"time"

	"github.com/odometer-dev/odometer"
)

// Every instant the API writes is odometer.FormatTime's: UTC with exactly
// three fraction digits, as JavaScript's toISOString() writes it. A
// time.Time left to encoding/json would be written with nanoseconds, or
// with its trailing zeros dropped, so the answers carry strings.

// optionalTime formats t, or returns nil for an absent instant.
func optionalTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := odometer.FormatTime(*t)
	return &s
}

// keyJSON is an API key as the API shows it: never its hash.
type keyJSON struct {
	// Key is the secret, in the answer to POST /keys only.
	Key        string         `json:"key,omitempty"`
	ID         string         `json:"id"`
	Name       string         `json:"name,omitempty"`
	Scope      odometer.Scope `json:"scope"`
	CustomerID string         `json:"customerId,omitempty"`
	Prefix     string         `json:"prefix"`
	CreatedAt  string         `json:"createdAt"`
	LastUsedAt *string        `json:"lastUsedAt,omitempty"`
	RevokedAt  *string        `json:"revokedAt,omitempty"`
}

func toKeyJSON(k *odometer.APIKey) keyJSON {
	return keyJSON{
		ID: k.ID, Name: k.Name, Scope: k.Scope, CustomerID: k.CustomerID, Prefix: k.Prefix,
		CreatedAt: odometer.FormatTime(k.CreatedAt), LastUsedAt: optionalTime(k.LastUsedAt), RevokedAt: optionalTime(k.RevokedAt),
	}
}

// deliveryJSON is a webhook delivery as GET /deliveries shows it.
type deliveryJSON struct {
	ID             string  `json:"id"`
	NotificationID int64   `json:"notificationId"`
	Type           string  `json:"type"`
	AggregationID  string  `json:"aggregationId"`
	CustomerID     string  `json:"customerId"`
	Revision       int     `json:"revision"`
	Endpoint       string  `json:"endpoint"`
	Status         string  `json:"status"`
	Attempts       int     `json:"attempts"`
	NextAttemptAt  *string `json:"nextAttemptAt,omitempty"`
	LastError      string  `json:"lastError,omitempty"`
	LastStatus     int     `json:"lastStatus,omitempty"`
	LastAttemptAt  *string `json:"lastAttemptAt,omitempty"`
	DeliveredAt    *string `json:"deliveredAt,omitempty"`
	DryRun         bool    `json:"dryRun,omitempty"`
	CreatedAt      string  `json:"createdAt"`
}

func toDeliveryJSON(d *odometer.Delivery) deliveryJSON {
	return deliveryJSON{
		ID: d.ID, NotificationID: d.NotificationID, Type: d.Type, AggregationID: d.AggregationID,
		CustomerID: d.CustomerID, Revision: d.Revision, Endpoint: d.Endpoint, Status: d.Status,
		Attempts: d.Attempts, NextAttemptAt: optionalTime(d.NextAttemptAt), LastError: d.LastError,
		LastStatus: d.LastStatus, LastAttemptAt: optionalTime(d.LastAttemptAt), DeliveredAt: optionalTime(d.DeliveredAt),
		DryRun: d.DryRun, CreatedAt: odometer.FormatTime(d.CreatedAt),
	}
}

// webhookStatusJSON is an aggregation's webhookStatus.
type webhookStatusJSON struct {
	Delivered     bool    `json:"delivered"`
	Attempts      int     `json:"attempts"`
	DeliveredAt   *string `json:"deliveredAt,omitempty"`
	LastError     string  `json:"lastError,omitempty"`
	LastAttemptAt *string `json:"lastAttemptAt,omitempty"`
	DryRun        bool    `json:"dryRun,omitempty"`
}

func toWebhookStatusJSON(w odometer.WebhookStatus) webhookStatusJSON {
	return webhookStatusJSON{
		Delivered: w.Delivered, Attempts: w.Attempts, DeliveredAt: optionalTime(w.DeliveredAt),
		LastError: w.LastError, LastAttemptAt: optionalTime(w.LastAttemptAt), DryRun: w.DryRun,
	}
}
