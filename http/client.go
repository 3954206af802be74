package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/odometer-dev/odometer"
)

// Client is a typed client of the API: what the command line uses.
type Client struct {
	// URL is the server's base URL, such as http://127.0.0.1:8080.
	URL string
	// Key is the API key, sent in the x-apikey header.
	Key string
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
	// UserAgent, when set, is sent as User-Agent.
	UserAgent string
	// Uncompressed sends batches as they are: by default SendBatch sends
	// them with Content-Encoding: gzip, about a tenth of the bytes.
	Uncompressed bool
}

// APIError is an error answer of the server.
type APIError struct {
	Status  int
	Message string
	// RequestID is the server's X-Request-Id, under which it logged the
	// request.
	RequestID string
	// ValidationErrors are the invalid members of a refused batch (422).
	ValidationErrors []ValidationError
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

// ValidationError names the problems of one member of a refused batch.
type ValidationError struct {
	Index  int      `json:"index"`
	Errors []string `json:"errors"`
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("server answered %d: %s", e.Status, msg)
	if e.RequestID != "" && e.Status >= 500 {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// Temporary reports whether the same request may succeed later: the
// server was unavailable or failed.
func (e *APIError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// EventRecord is a stored event as GET /events shows it.
type EventRecord struct {
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

// AggregationRecord is an aggregation as GET /aggregations shows it.
type AggregationRecord struct {
	ID            string                           `json:"_id"`
	CustomerID    string                           `json:"customerId"`
	Period        string                           `json:"period"`
	PeriodStart   string                           `json:"periodStart"`
	PeriodEnd     string                           `json:"periodEnd"`
	PeriodKey     string                           `json:"periodKey"`
	Timestamp     string                           `json:"timestamp"`
	Events        map[string]float64               `json:"events"`
	EventCounts   map[string]int64                 `json:"eventCounts"`
	Groups        map[string][]odometer.GroupValue `json:"groups,omitempty"`
	WebhookStatus odometer.WebhookStatus           `json:"webhookStatus"`
	Complete      bool                             `json:"complete"`
	Revision      int                              `json:"revision"`
}

// EventQuery selects events, as the query parameters of GET /events.
// Zero values select everything.
type EventQuery struct {
	CustomerID string
	EventType  string
	From, To   time.Time
	Limit      int
	Cursor     string
}

func (q EventQuery) values() url.Values {
	v := url.Values{}
	set(v, "customerId", q.CustomerID)
	set(v, "eventType", q.EventType)
	setTime(v, "from", q.From)
	setTime(v, "to", q.To)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	set(v, "cursor", q.Cursor)
	return v
}

// AggregationQuery selects aggregations, as the query parameters of
// GET /aggregations.
type AggregationQuery struct {
	CustomerID string
	Period     string
	From, To   time.Time
	// Complete, when set, selects ended (true) or current (false) periods.
	Complete *bool
	Limit    int
	Cursor   string
}

// DeliveryQuery selects webhook deliveries.
type DeliveryQuery struct {
	Status     string
	CustomerID string
	Limit      int
	Cursor     string
}

// BatchResult is the answer to a stored batch.
type BatchResult struct {
	Count      int `json:"count"`
	Duplicates int `json:"duplicates"`
}

// TriggerResult is the answer of POST /aggregations/trigger.
type TriggerResult struct {
	Message string `json:"message"`
	odometer.RunResult
}

// DeleteResult is the answer of DELETE /events.
type DeleteResult struct {
	Message             string `json:"message"`
	Deleted             int    `json:"deleted"`
	AggregationsUpdated int    `json:"aggregationsUpdated"`
	PeriodsRevised      int    `json:"periodsRevised"`
}

func set(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

func setTime(v url.Values, k string, t time.Time) {
	if !t.IsZero() {
		v.Set(k, t.UTC().Format(time.RFC3339Nano))
	}
}

// do sends a request and decodes a 2xx JSON answer into out (unless nil).
// Any other answer is an *APIError; a failure to reach the server is
// returned as it is.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, out any) (http.Header, error) {
	return c.doEncoded(ctx, method, path, query, body, "", out)
}

// doEncoded is do with a body already compressed with encoding ("" for
// none).
func (c *Client) doEncoded(ctx context.Context, method, path string, query url.Values, body []byte, encoding string, out any) (http.Header, error) {
	u := strings.TrimRight(c.URL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	if c.Key != "" {
		req.Header.Set("x-apikey", c.Key)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.Header, apiError(resp, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.Header, fmt.Errorf("%s %s: the answer is not the JSON expected: %v", method, path, err)
		}
	}
	return resp.Header, nil
}

func apiError(resp *http.Response, b []byte) *APIError {
	e := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	var body struct {
		Error            string            `json:"error"`
		RequestID        string            `json:"requestId"`
		ValidationErrors []ValidationError `json:"validationErrors"`
	}
	if json.Unmarshal(b, &body) == nil {
		e.Message, e.ValidationErrors = body.Error, body.ValidationErrors
		if body.RequestID != "" {
			e.RequestID = body.RequestID
		}
	} else {
		e.Message = strings.TrimSpace(string(b))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
	}
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
		e.RetryAfter = time.Duration(n) * time.Second
	}
	return e
}

// Ping calls GET /ping.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.do(ctx, "GET", "/ping", nil, nil, nil)
	return err
}

// Config returns the configuration in force (webhook secrets redacted).
func (c *Client) Config(ctx context.Context) (*odometer.Config, error) {
	var raw json.RawMessage
	if _, err := c.do(ctx, "GET", "/config", nil, nil, &raw); err != nil {
		return nil, err
	}
	var cfg odometer.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("GET /config: %v", err)
	}
	return &cfg, nil
}

// PostEvent posts one event to POST /usage/{eventType}; body is its JSON
// object. It reports whether the event was a duplicate.
func (c *Client) PostEvent(ctx context.Context, eventType string, body []byte) (duplicate bool, err error) {
	var out struct {
		Duplicate bool `json:"duplicate"`
	}
	_, err = c.do(ctx, "POST", "/usage/"+url.PathEscape(eventType), nil, body, &out)
	return out.Duplicate, err
}

// SendBatch posts a batch to POST /usagebatch; body is a JSON array of
// up to 1000 events. A batch with invalid members is refused whole: the
// *APIError (422) lists them.
//
// The batch goes gzipped unless c.Uncompressed is set or it is small; a
// server that answers 415 to gzip gets it again as it is.
func (c *Client) SendBatch(ctx context.Context, body []byte) (BatchResult, error) {
	var out BatchResult
	if !c.Uncompressed && len(body) >= minGzipBytes {
		_, err := c.doEncoded(ctx, "POST", "/usagebatch", nil, gzipBytes(body), "gzip", &out)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusUnsupportedMediaType {
			return out, err
		}
	}
	_, err := c.do(ctx, "POST", "/usagebatch", nil, body, &out)
	return out, err
}

// minGzipBytes is the smallest batch SendBatch compresses: below it the
// saving is a few hundred bytes at most.
const minGzipBytes = 1 << 10

var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// gzipBytes returns b compressed with gzip.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b)/4 + 64)
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	zw.Write(b) // a bytes.Buffer does not fail
	zw.Close()
	return buf.Bytes()
}

// Events returns one page of events, newest first, and the cursor of the
// next page ("" at the end).
func (c *Client) Events(ctx context.Context, q EventQuery) ([]EventRecord, string, error) {
	var out []EventRecord
	h, err := c.do(ctx, "GET", "/events", q.values(), nil, &out)
	if err != nil {
		return nil, "", err
	}
	return out, h.Get("X-Next-Cursor"), nil
}

// DeleteEvents deletes the events q selects (its Limit and Cursor aside).
// A query without any filter is refused unless all is set.
func (c *Client) DeleteEvents(ctx context.Context, q EventQuery, all bool) (DeleteResult, error) {
	v := EventQuery{CustomerID: q.CustomerID, EventType: q.EventType, From: q.From, To: q.To}.values()
	if all {
		v.Set("all", "true")
	}
	var out DeleteResult
	_, err := c.do(ctx, "DELETE", "/events", v, nil, &out)
	return out, err
}

// Aggregations returns one page of aggregations, newest period first,
// and the cursor of the next page.
func (c *Client) Aggregations(ctx context.Context, q AggregationQuery) ([]AggregationRecord, string, error) {
	v := url.Values{}
	set(v, "customerId", q.CustomerID)
	set(v, "period", q.Period)
	setTime(v, "from", q.From)
	setTime(v, "to", q.To)
	if q.Complete != nil {
		v.Set("complete", strconv.FormatBool(*q.Complete))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	set(v, "cursor", q.Cursor)
	var out []AggregationRecord
	h, err := c.do(ctx, "GET", "/aggregations", v, nil, &out)
	if err != nil {
		return nil, "", err
	}
	return out, h.Get("X-Next-Cursor"), nil
}

// Trigger aggregates now and answers when done.
func (c *Client) Trigger(ctx context.Context) (TriggerResult, error) {
	var out TriggerResult
	_, err := c.do(ctx, "POST", "/aggregations/trigger", nil, nil, &out)
	return out, err
}

// CreateKey creates an API key and returns its secret, shown this once.
func (c *Client) CreateKey(ctx context.Context, scope odometer.Scope, customerID, name string) (string, *odometer.APIKey, error) {
	body, _ := json.Marshal(map[string]string{"scope": string(scope), "customerId": customerID, "name": name})
	var out struct {
		Key string `json:"key"`
		odometer.APIKey
	}
	if _, err := c.do(ctx, "POST", "/keys", nil, body, &out); err != nil {
		return "", nil, err
	}
	return out.Key, &out.APIKey, nil
}

// Keys lists the API keys, never their secret.
func (c *Client) Keys(ctx context.Context) ([]*odometer.APIKey, error) {
	var out []*odometer.APIKey
	_, err := c.do(ctx, "GET", "/keys", nil, nil, &out)
	return out, err
}

// RevokeKey revokes a key by its id.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	_, err := c.do(ctx, "DELETE", "/keys/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// CustomerQuery selects customers, as the query parameters of GET /customers.
type CustomerQuery struct {
	// Q keeps the customers whose id or name starts with it.
	Q      string
	Limit  int
	Cursor string
}

// Customers returns one page of customers, by id, and the cursor of the
// next page.
func (c *Client) Customers(ctx context.Context, q CustomerQuery) ([]CustomerRecord, string, error) {
	v := url.Values{}
	set(v, "q", q.Q)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	set(v, "cursor", q.Cursor)
	var out []CustomerRecord
	h, err := c.do(ctx, "GET", "/customers", v, nil, &out)
	if err != nil {
		return nil, "", err
	}
	return out, h.Get("X-Next-Cursor"), nil
}

// Customer returns a customer, its first and last events and its current
// billing cycle.
func (c *Client) Customer(ctx context.Context, id string) (*CustomerRecord, error) {
	var out CustomerRecord
	if _, err := c.do(ctx, "GET", "/customers/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutCustomer creates or replaces a customer's profile with body, a JSON
// object of PUT /customers/{id}, and returns the customer.
func (c *Client) PutCustomer(ctx context.Context, id string, body []byte) (*CustomerRecord, error) {
	var out CustomerRecord
	if _, err := c.do(ctx, "PUT", "/customers/"+url.PathEscape(id), nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AlertInput is the body of POST /alerts.
type AlertInput struct {
	Meter      string  `json:"meter"`
	Period     string  `json:"period"`
	Threshold  float64 `json:"threshold"`
	CustomerID string  `json:"customerId,omitempty"`
}

// CreateAlert creates a usage alert.
func (c *Client) CreateAlert(ctx context.Context, in AlertInput) (*AlertRecord, error) {
	body, _ := json.Marshal(in)
	var out AlertRecord
	if _, err := c.do(ctx, "POST", "/alerts", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Alerts lists the usage alerts, of one customer when customerID is set.
func (c *Client) Alerts(ctx context.Context, customerID string) ([]AlertRecord, error) {
	v := url.Values{}
	set(v, "customerId", customerID)
	var out []AlertRecord
	_, err := c.do(ctx, "GET", "/alerts", v, nil, &out)
	return out, err
}

// DeleteAlert deletes a usage alert by its id.
func (c *Client) DeleteAlert(ctx context.Context, id string) error {
	_, err := c.do(ctx, "DELETE", "/alerts/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// Deliveries returns one page of webhook deliveries, newest first.
func (c *Client) Deliveries(ctx context.Context, q DeliveryQuery) ([]*odometer.Delivery, string, error) {
	v := url.Values{}
	set(v, "status", q.Status)
	set(v, "customerId", q.CustomerID)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	set(v, "cursor", q.Cursor)
	var out []*odometer.Delivery
	h, err := c.do(ctx, "GET", "/deliveries", v, nil, &out)
	if err != nil {
		return nil, "", err
	}
	return out, h.Get("X-Next-Cursor"), nil
}

// RetryDelivery makes a delivery due now.
func (c *Client) RetryDelivery(ctx context.Context, id string) (*odometer.Delivery, error) {
	var out odometer.Delivery
	if _, err := c.do(ctx, "POST", "/deliveries/"+url.PathEscape(id)+"/retry", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Metrics returns the text of GET /metrics.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	u := strings.TrimRight(c.URL, "/") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("x-apikey", c.Key)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", apiError(resp, b)
	}
	return string(b), nil
}
