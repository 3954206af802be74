package odometer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one notification on its way to one webhook endpoint: the
// durable outbox entry. Its ID is the webhook-id header, the same on every
// try, so a receiver can drop repeats.
type Delivery struct {
	ID             string     `json:"id"`
	NotificationID int64      `json:"notificationId"`
	Type           string     `json:"type"`
	AggregationID  string     `json:"aggregationId"`
	CustomerID     string     `json:"customerId"`
	Revision       int        `json:"revision"`
	Endpoint       string     `json:"endpoint"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	NextAttemptAt  *time.Time `json:"nextAttemptAt,omitempty"`
	LastError      string     `json:"lastError,omitempty"`
	LastStatus     int        `json:"lastStatus,omitempty"`
	LastAttemptAt  *time.Time `json:"lastAttemptAt,omitempty"`
	DeliveredAt    *time.Time `json:"deliveredAt,omitempty"`
	DryRun         bool       `json:"dryRun,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
	// Payload is the body, fixed when the revision was recorded.
	Payload []byte `json:"-"`
}

// DeliveryFilter selects deliveries, newest first.
type DeliveryFilter struct {
	Status     string
	CustomerID string
	Endpoint   string
	Limit      int
	Cursor     string
}

// DeliveryStore is the webhook outbox.
type DeliveryStore interface {
	// ClaimDeliveries leases up to limit pending deliveries to endpoint that
	// are due at now: their next attempt moves to now+lease, so that a
	// sender that dies mid-try leaves them to be tried again then.
	ClaimDeliveries(ctx context.Context, endpoint string, now time.Time, lease time.Duration, limit int) ([]*Delivery, error)
	// RecordAttempts stores the outcome of tries, and the webhook status
	// of their aggregations, in one transaction.
	RecordAttempts(ctx context.Context, ds []*Delivery) error
	FindDeliveries(ctx context.Context, f DeliveryFilter) ([]*Delivery, string, error)
	// CountDeliveries returns how many deliveries have each status.
	CountDeliveries(ctx context.Context) (map[string]int64, error)
	// FindDelivery returns one delivery, or ENOTFOUND.
	FindDelivery(ctx context.Context, id string) (*Delivery, error)
	// RetryDelivery makes a delivery pending and due at now, and enables
	// its endpoint again if a 410 had disabled it.
	RetryDelivery(ctx context.Context, id string, now time.Time) (*Delivery, error)
	// DisableEndpoint records that an endpoint answered 410 Gone. Its
	// pending deliveries wait, unsent, until one of them is retried.
	DisableEndpoint(ctx context.Context, endpoint, reason string, now time.Time) error
	// DisabledEndpoints returns the disabled endpoints and why.
	DisabledEndpoints(ctx context.Context) (map[string]string, error)
	// RetryDeliveries makes every failed delivery to endpoint pending and
	// due at now, enables the endpoint again if a 410 had disabled it, and
	// returns how many deliveries it made pending.
	RetryDeliveries(ctx context.Context, endpoint string, now time.Time) (int64, error)
	// EndpointStats returns, for every endpoint that has deliveries or was
	// disabled, its deliveries by status, those last tried at or after
	// since by status, its last success and last try, and why and when it
	// was disabled.
	EndpointStats(ctx context.Context, since time.Time) (map[string]*EndpointStats, error)
}

// EndpointStats is the outbox's record of one webhook endpoint.
type EndpointStats struct {
	// Counts are its deliveries by status.
	Counts map[string]int64
	// Recent are its deliveries last tried at or after the time asked
	// for, by status: a pending one there has failed its last try.
	Recent        map[string]int64
	LastSuccessAt *time.Time
	LastAttemptAt *time.Time
	// DisabledReason is set when a 410 Gone disabled the endpoint.
	DisabledReason string
	DisabledAt     *time.Time
}

// NewEndpointStats returns empty stats, every status counted as 0.
func NewEndpointStats() *EndpointStats {
	zero := func() map[string]int64 {
		return map[string]int64{DeliveryPending: 0, DeliveryDelivered: 0, DeliveryFailed: 0}
	}
	return &EndpointStats{Counts: zero(), Recent: zero()}
}

// RetrySchedule is the wait before each try: at once, then 5 s, 5 min,
// 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h: ten tries over about three
// days. Each wait but the first gets up to 10% of jitter.
var RetrySchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}

// WebhookRequest is one try of one delivery.
type WebhookRequest struct {
	URL     string
	Headers map[string]string
	Body    []byte
}

// WebhookResponse is what the endpoint answered.
type WebhookResponse struct {
	Status     int
	RetryAfter time.Duration
	// Err is a transport error: refused target, timeout, reset.
	Err error
}

// WebhookSender sends one request. Implementations refuse private targets
// unless told otherwise, follow no redirects and time out.
type WebhookSender interface {
	Send(ctx context.Context, req WebhookRequest) WebhookResponse
}

// Dispatcher sends due deliveries. Each endpoint has its own lane, so a
// slow endpoint delays only its own deliveries.
type Dispatcher struct {
	Store  DeliveryStore
	Sender WebhookSender
	Config func() *Config
	Now    func() time.Time
	Logger *slog.Logger
	// DryRun logs what would be sent and marks it delivered.
	DryRun bool
	// Concurrency is how many requests one endpoint has in flight.
	Concurrency int
	// Batch is how many deliveries one endpoint claims at a time.
	Batch int
	// Lease is how long a claimed delivery waits before another sender
	// may take it over; longer than a request may take.
	Lease time.Duration
	// Jitter returns a factor in [0, 1) for the retry jitter.
	Jitter func() float64

	kickOnce sync.Once
	kick     chan struct{}
}

// Kick wakes Run before its next poll: new deliveries are due.
func (d *Dispatcher) Kick() {
	d.kickOnce.Do(func() { d.kick = make(chan struct{}, 1) })
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) defaults() {
	if d.Concurrency <= 0 {
		d.Concurrency = 16
	}
	if d.Batch <= 0 {
		d.Batch = 64
	}
	if d.Lease <= 0 {
		// Longer than a batch can take against an endpoint that never
		// answers: Batch/Concurrency rounds of a 15-second timeout.
		d.Lease = time.Duration((d.Batch+d.Concurrency-1)/d.Concurrency)*15*time.Second + time.Minute
	}
	if d.Jitter == nil {
		d.Jitter = rand.Float64
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
}

// RunOnce sends every delivery due now, endpoint by endpoint in parallel,
// and returns how many tries it made.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	d.defaults()
	lanes, err := d.lanes(ctx)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int
	var errs []error
	for _, w := range lanes {
		wg.Add(1)
		go func(w Webhook) {
			defer wg.Done()
			n, err := d.drain(ctx, w)
			mu.Lock()
			total += n
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// lanes returns the webhooks to send to: enabled, and not disabled by a
// 410.
func (d *Dispatcher) lanes(ctx context.Context) ([]Webhook, error) {
	disabled, err := d.Store.DisabledEndpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("webhook endpoints: %w", err)
	}
	var out []Webhook
	for _, w := range d.Config().Webhooks {
		if _, off := disabled[w.URL]; off || !w.Enabled {
			continue
		}
		out = append(out, w)
	}
	return out, nil
}

// Run sends due deliveries every poll, and when kicked, until ctx ends;
// then it waits for the tries in flight. Each endpoint's lane runs on its
// own: a lane busy with a slow endpoint holds back no other, and one that
// was due again while busy runs again as soon as it is done.
func (d *Dispatcher) Run(ctx context.Context, poll time.Duration) {
	d.defaults()
	d.kickOnce.Do(func() { d.kick = make(chan struct{}, 1) })
	t := time.NewTicker(poll)
	defer t.Stop()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		busy  = map[string]bool{} // lanes running
		again = map[string]bool{} // lanes due again while running
	)
	defer wg.Wait()
	lane := func(w Webhook) {
		defer wg.Done()
		if _, err := d.drain(ctx, w); err != nil && ctx.Err() == nil {
			d.Logger.Error("webhook delivery", "endpoint", w.URL, "err", err)
		}
		mu.Lock()
		delete(busy, w.URL)
		rerun := again[w.URL]
		delete(again, w.URL)
		mu.Unlock()
		if rerun {
			d.Kick()
		}
	}
	for {
		lanes, err := d.lanes(ctx)
		if err != nil && ctx.Err() == nil {
			d.Logger.Error("webhook delivery", "err", err)
		}
		mu.Lock()
		for _, w := range lanes {
			if busy[w.URL] {
				again[w.URL] = true
				continue
			}
			busy[w.URL] = true
			wg.Add(1)
			go lane(w)
		}
		mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.kick:
		}
	}
}

// drain sends the due deliveries of one endpoint, batch after batch.
func (d *Dispatcher) drain(ctx context.Context, w Webhook) (int, error) {
	total := 0
	for ctx.Err() == nil {
		now := d.Now().UTC()
		batch, err := d.Store.ClaimDeliveries(ctx, w.URL, now, d.Lease, d.Batch)
		if err != nil {
			return total, fmt.Errorf("claim deliveries: %w", err)
		}
		if len(batch) == 0 {
			return total, nil
		}
		sem := make(chan struct{}, d.Concurrency)
		var wg sync.WaitGroup
		gone := false
		var goneMu sync.Mutex
		for _, dl := range batch {
			sem <- struct{}{}
			wg.Add(1)
			go func(dl *Delivery) {
				defer func() { <-sem; wg.Done() }()
				if d.attempt(ctx, w, dl) {
					goneMu.Lock()
					gone = true
					goneMu.Unlock()
				}
			}(dl)
		}
		wg.Wait()
		// Record even if ctx ended: what was sent must be written down.
		if err := d.Store.RecordAttempts(context.WithoutCancel(ctx), batch); err != nil {
			return total, fmt.Errorf("record attempts: %w", err)
		}
		total += len(batch)
		if gone {
			if err := d.Store.DisableEndpoint(context.WithoutCancel(ctx), w.URL, "the endpoint answered 410 Gone", d.Now().UTC()); err != nil {
				return total, err
			}
			d.Logger.Warn("webhook endpoint disabled: it answered 410 Gone", "endpoint", w.URL)
			return total, nil
		}
		if len(batch) < d.Batch {
			return total, nil
		}
	}
	return total, ctx.Err()
}

// attempt makes one try and updates dl with its outcome. It reports
// whether the endpoint answered 410 Gone.
func (d *Dispatcher) attempt(ctx context.Context, w Webhook, dl *Delivery) (gone bool) {
	now := d.Now().UTC()
	ts := now.Unix()
	req := WebhookRequest{URL: w.URL, Body: dl.Payload, Headers: map[string]string{
		"Content-Type":        "application/json",
		"User-Agent":          "Odometer-Webhooks/1",
		"X-Webhook-Timestamp": strconv.FormatInt(ts, 10),
		"X-Webhook-Signature": SignTemplate(w.Secret, ts, dl.Payload),
		"webhook-id":          dl.ID,
		"webhook-timestamp":   strconv.FormatInt(ts, 10),
		"webhook-signature":   SignStandard(w.Secret, dl.ID, ts, dl.Payload),
	}}
	dl.Attempts++
	dl.LastAttemptAt = &now
	if d.DryRun {
		d.Logger.Info("DRY_RUN: webhook not sent", "id", dl.ID, "endpoint", w.URL, "type", dl.Type,
			"payload", string(dl.Payload), "webhook-timestamp", ts, "webhook-signature", req.Headers["webhook-signature"],
			"X-Webhook-Signature", req.Headers["X-Webhook-Signature"])
		dl.Status, dl.DeliveredAt, dl.DryRun, dl.LastError, dl.NextAttemptAt = DeliveryDelivered, &now, true, "", nil
		return false
	}
	res := d.Sender.Send(ctx, req)
	dl.LastStatus = res.Status
	switch {
	case res.Err == nil && res.Status >= 200 && res.Status < 300:
		dl.Status, dl.DeliveredAt, dl.LastError, dl.NextAttemptAt = DeliveryDelivered, &now, "", nil
		return false
	case res.Err != nil:
		dl.LastError = res.Err.Error()
	case res.Status == 410:
		dl.LastError = "410 Gone: the endpoint is disabled until a delivery to it is retried"
		dl.Status, dl.NextAttemptAt = DeliveryFailed, nil
		return true
	default:
		dl.LastError = "the endpoint answered " + strconv.Itoa(res.Status)
		if res.Status >= 300 && res.Status < 400 {
			dl.LastError += " (redirects are not followed)"
		}
	}
	if dl.Attempts >= len(RetrySchedule) {
		dl.Status, dl.NextAttemptAt = DeliveryFailed, nil
		return false
	}
	wait := RetrySchedule[dl.Attempts]
	wait += time.Duration(float64(wait) * 0.1 * d.Jitter())
	if res.RetryAfter > wait {
		wait = min(res.RetryAfter, 24*time.Hour)
	}
	next := now.Add(wait)
	dl.Status, dl.NextAttemptAt = DeliveryPending, &next
	return false
}

// WebhookStatusOf is an aggregation's webhookStatus, from the deliveries
// of its current revision (one for each endpoint): delivered once every
// endpoint has it; the most tries of any endpoint; the latest try; the
// error of the latest try that failed.
func WebhookStatusOf(ds []Delivery) WebhookStatus {
	var w WebhookStatus
	undelivered := 0
	var errAt *time.Time // the try lastError comes from
	for i := range ds {
		d := &ds[i]
		if d.Status != DeliveryDelivered {
			undelivered++
		}
		w.Attempts = max(w.Attempts, d.Attempts)
		if d.DeliveredAt != nil && (w.DeliveredAt == nil || d.DeliveredAt.After(*w.DeliveredAt)) {
			w.DeliveredAt = d.DeliveredAt
		}
		if d.LastAttemptAt != nil && (w.LastAttemptAt == nil || d.LastAttemptAt.After(*w.LastAttemptAt)) {
			w.LastAttemptAt = d.LastAttemptAt
		}
		if d.LastError != "" && (w.LastError == "" || (d.LastAttemptAt != nil && (errAt == nil || d.LastAttemptAt.After(*errAt)))) {
			w.LastError, errAt = d.LastError, d.LastAttemptAt
		}
		w.DryRun = w.DryRun || d.DryRun
	}
	w.Delivered = len(ds) > 0 && undelivered == 0
	if !w.Delivered {
		w.DeliveredAt = nil
	}
	return w
}
