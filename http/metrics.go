package http

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/odometer-dev/odometer"
)

// Metrics are the server's Prometheus metrics, every one named odometer_…,
// in a registry of their own (never the global one, so that two servers in
// one process, as in tests, do not mix). Counters are fed by the request
// middleware and by the store decorators (Events, Deliveries); gauges that
// describe the store (aggregation lag and backlog, outbox depth) are read
// from it at each scrape.
type Metrics struct {
	Registry *prometheus.Registry
	// Now is the clock of the lag gauge.
	Now func() time.Time

	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	ingested   *prometheus.CounterVec
	refused    *prometheus.CounterVec
	runs       *prometheus.CounterVec
	skipped    *prometheus.CounterVec
	runTime    *prometheus.HistogramVec
	deliveries *prometheus.CounterVec
	alerts     prometheus.Counter

	bindOnce sync.Once
}

// Labels of odometer_events_ingested_total.
const (
	ingestStored    = "stored"
	ingestDuplicate = "duplicate"
)

// Triggers of an aggregation run.
const (
	RunScheduled = "schedule"
	RunAPI       = "api"
)

// NewMetrics returns the metrics, with the Go runtime's and the process's
// own (as odometer_go_… and odometer_process_…), and the build's version.
func NewMetrics(version string, now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		Now:      now,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odometer_http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "odometer_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method", "route"}),
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odometer_events_ingested_total",
			Help: "Events accepted by the store: stored (new) or duplicate (an id already stored, not counted again).",
		}, []string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odometer_ingest_refused_total",
			Help: "Ingest requests refused, by route and reason (invalid, conflict, too_large, unauthorized, forbidden, unavailable, internal). A batch is stored or refused whole: one refused batch counts once.",
		}, []string{"route", "reason"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odometer_aggregation_runs_total",
			Help: "Aggregation runs, by trigger (schedule, api) and result (ok, error).",
		}, []string{"trigger", "result"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odometer_meter_events_skipped_total",
			Help: "Events a meter did not count because the value it reads is missing (missing), not a number (not_number), beyond ±1e300 (out_of_range) or not a string, number or boolean (not_scalar), by meter and reason. The event is stored and counts for every other meter. An event is counted again if its hour is rebuilt.",
		}, []string{"meter", "reason"}),
		runTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "odometer_aggregation_run_duration_seconds",
			Help:    "Duration of an aggregation run, by trigger (schedule, api).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
		}, []string{"trigger"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odometer_webhook_deliveries_total",
			Help: "Webhook delivery attempts, by outcome: delivered, dry_run, retry (failed, tried again later), failed (given up, or 410 Gone).",
		}, []string{"outcome"}),
		alerts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "odometer_alerts_fired_total",
			Help: "usage.threshold_reached notifications recorded by this process: one per alert, customer and period, each with one delivery per enabled webhook.",
		}),
	}
	for _, r := range []string{ingestStored, ingestDuplicate} {
		m.ingested.WithLabelValues(r)
	}
	for _, o := range []string{odometer.DeliveryDelivered, "dry_run", "retry", odometer.DeliveryFailed} {
		m.deliveries.WithLabelValues(o)
	}
	reg.MustRegister(m.requests, m.latency, m.ingested, m.refused, m.runs, m.skipped, m.runTime, m.deliveries, m.alerts)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "odometer_build_info",
		Help:        "Always 1; the version of the running server is its label.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	reg.MustRegister(info)
	prefixed := prometheus.WrapRegistererWithPrefix("odometer_", reg)
	prefixed.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveRun records one aggregation run, of trigger RunScheduled or
// RunAPI, that took d.
func (m *Metrics) ObserveRun(trigger string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.runs.WithLabelValues(trigger, result).Inc()
	m.runTime.WithLabelValues(trigger).Observe(d.Seconds())
}

// AddSkipped counts events a meter skipped.
func (m *Metrics) AddSkipped(k odometer.MeterSkip, n int64) {
	m.skipped.WithLabelValues(k.Meter, k.Reason).Add(float64(n))
}

// AddAlertsFired counts alerts that fired.
func (m *Metrics) AddAlertsFired(n int) {
	m.alerts.Add(float64(n))
}

// handleMetrics is GET /metrics, in the Prometheus text format.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	s.metricsHandler.ServeHTTP(w, r)
}

// setupMetrics makes the metrics (unless given), counts the events stored
// through s.Events, and registers the gauges read from the stores.
func (s *Server) setupMetrics() {
	if s.Metrics == nil {
		s.Metrics = NewMetrics(s.Version, s.Now)
	}
	if s.Events != nil {
		s.Events = s.Metrics.Events(s.Events)
	}
	s.Metrics.bind(s.Aggs, s.Deliveries, s.Logger)
	s.metricsHandler = metricsHandlerFor(s.Metrics, s.Logger)
}

// bind registers the gauges read from the stores at each scrape.
func (m *Metrics) bind(aggs odometer.AggregationStore, deliveries odometer.DeliveryStore, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	m.bindOnce.Do(func() {
		m.Registry.MustRegister(&storeCollector{m: m, aggs: aggs, deliveries: deliveries, log: log})
	})
}

var (
	lagDesc = prometheus.NewDesc("odometer_aggregation_lag_seconds",
		"Age of the oldest event not yet folded into the aggregates (by its receipt time), 0 when every event is folded.", nil, nil)
	backlogDesc = prometheus.NewDesc("odometer_aggregation_backlog_events",
		"Events stored but not yet folded into the aggregates.", nil, nil)
	watermarkDesc = prometheus.NewDesc("odometer_aggregation_watermark",
		"Sequence number of the newest event folded into the aggregates.", nil, nil)
	outboxDesc = prometheus.NewDesc("odometer_webhook_outbox_pending",
		"Webhook deliveries waiting to be sent or retried.", nil, nil)
	disabledDesc = prometheus.NewDesc("odometer_webhook_endpoints_disabled",
		"Webhook endpoints disabled after answering 410 Gone, until a delivery to them is retried.", nil, nil)
)

// storeCollector reads the gauges of the store at each scrape.
type storeCollector struct {
	m          *Metrics
	aggs       odometer.AggregationStore
	deliveries odometer.DeliveryStore
	log        *slog.Logger
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- backlogDesc
	ch <- watermarkDesc
	ch <- outboxDesc
	ch <- disabledDesc
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fail := func(d *prometheus.Desc, err error) {
		c.log.Warn("metrics: cannot read the store", "metric", d.String(), "err", err)
		ch <- prometheus.NewInvalidMetric(d, err)
	}
	if c.aggs != nil {
		st, err := c.aggs.RunState(ctx)
		var b odometer.Backlog
		if err == nil {
			b, err = c.aggs.Backlog(ctx)
		}
		if err != nil {
			fail(lagDesc, err)
		} else {
			lag := 0.0
			if b.Events > 0 {
				lag = max(c.m.Now().Sub(b.Oldest).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag)
			ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(b.Events))
			ch <- prometheus.MustNewConstMetric(watermarkDesc, prometheus.GaugeValue, float64(st.Watermark))
		}
	}
	if c.deliveries != nil {
		counts, err := c.deliveries.CountDeliveries(ctx)
		if err != nil {
			fail(outboxDesc, err)
		} else {
			ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(counts[odometer.DeliveryPending]))
		}
		off, err := c.deliveries.DisabledEndpoints(ctx)
		if err != nil {
			fail(disabledDesc, err)
		} else {
			ch <- prometheus.MustNewConstMetric(disabledDesc, prometheus.GaugeValue, float64(len(off)))
		}
	}
}

// Events returns s, counting what it stores.
func (m *Metrics) Events(s odometer.EventStore) odometer.EventStore {
	if e, ok := s.(*meteredEvents); ok && e.m == m {
		return s
	}
	return &meteredEvents{EventStore: s, m: m}
}

type meteredEvents struct {
	odometer.EventStore
	m *Metrics
}

func (s *meteredEvents) CreateEvents(ctx context.Context, events []odometer.Event) ([]bool, error) {
	dup, err := s.EventStore.CreateEvents(ctx, events)
	if err != nil {
		return dup, err
	}
	dups := 0
	for _, d := range dup {
		if d {
			dups++
		}
	}
	s.m.ingested.WithLabelValues(ingestStored).Add(float64(len(events) - dups))
	s.m.ingested.WithLabelValues(ingestDuplicate).Add(float64(dups))
	return dup, nil
}

// Deliveries returns s, counting the outcome of every delivery attempt
// it records.
func (m *Metrics) Deliveries(s odometer.DeliveryStore) odometer.DeliveryStore {
	return &meteredDeliveries{DeliveryStore: s, m: m}
}

type meteredDeliveries struct {
	odometer.DeliveryStore
	m *Metrics
}

func (s *meteredDeliveries) RecordAttempts(ctx context.Context, ds []*odometer.Delivery) error {
	if err := s.DeliveryStore.RecordAttempts(ctx, ds); err != nil {
		return err
	}
	for _, d := range ds {
		outcome := d.Status
		switch {
		case d.DryRun && d.Status == odometer.DeliveryDelivered:
			outcome = "dry_run"
		case d.Status == odometer.DeliveryPending:
			outcome = "retry"
		}
		s.m.deliveries.WithLabelValues(outcome).Inc()
	}
	return nil
}

// reasons names the refusal of each error status: the inverse of the
// statuses table, with 422 (a batch with invalid members) as invalid.
var reasons = func() map[int]string {
	r := map[int]string{}
	for code, status := range statuses {
		r[status] = code
	}
	r[http.StatusUnprocessableEntity] = odometer.EINVALID
	r[http.StatusTooManyRequests] = "rate_limited"
	return r
}()

// ingestRoutes are the routes whose refusals are counted.
var ingestRoutes = map[string]bool{"/usage/{eventType}": true, "/usagebatch": true}

// instrument counts and times each request by its route pattern, never
// its raw path, so that the labels stay few.
func (s *Server) instrument(next http.Handler) http.Handler {
	m := s.Metrics
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		// The mux set the pattern on r: "POST /usage/{eventType}", or a
		// path alone for the 405 answers, or "/" for the 404 answers.
		route := r.Pattern
		if _, p, ok := strings.Cut(route, " "); ok {
			route = p
		}
		switch route {
		case "/{$}":
			route = "/"
		case "", "/":
			route = "unmatched"
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		m.requests.WithLabelValues(r.Method, route, strconv.Itoa(status)).Inc()
		m.latency.WithLabelValues(r.Method, route).Observe(d.Seconds())
		if status >= 400 && r.Method == http.MethodPost && ingestRoutes[route] {
			reason, ok := reasons[status]
			if !ok {
				reason = "other"
			}
			m.refused.WithLabelValues(route, reason).Inc()
		}
		if r.Method == http.MethodPost && route == "/aggregations/trigger" && status != http.StatusUnauthorized && status != http.StatusForbidden {
			var err error
			if status != http.StatusOK {
				err = errRunFailed
			}
			m.ObserveRun(RunAPI, d, err)
		}
	})
}

var errRunFailed = errors.New("aggregation failed")

// metricsHandlerFor serves the registry of m.
func metricsHandlerFor(m *Metrics, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      promLogger{log},
	})
}

// promLogger logs what a scrape could not collect.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	parts := make([]string, len(v))
	for i, x := range v {
		if e, ok := x.(error); ok {
			parts[i] = e.Error()
		} else if s, ok := x.(string); ok {
			parts[i] = s
		}
	}
	l.log.Error("metrics", "err", strings.Join(parts, " "))
}
