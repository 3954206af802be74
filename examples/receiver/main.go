// Command receiver is an example receiver of Odometer's webhooks, written
// with the standard library only so that it can be copied into any Go
// service. It
//
//   - checks both signatures Odometer sends: the template's
//     X-Webhook-Signature and the Standard Webhooks webhook-signature;
//   - refuses a timestamp more than five minutes from its own clock, so a
//     captured request cannot be replayed later;
//   - drops repeats by webhook-id, which stays the same on every try of
//     one delivery;
//   - prints each completed aggregation as invoice lines, and each revision
//     of one as correction lines.
//
// Run it beside Odometer (whose config names http://127.0.0.1:9000/hooks
// with the same secret; loopback needs odometer serve
// --webhook-allow-private):
//
//	WEBHOOK_SECRET=whsec_... go run ./examples/receiver -addr 127.0.0.1:9000
//
// A real billing system keeps the ids it has seen in its database, in the
// same transaction as the invoice lines they produced; the map here is
// the in-memory stand-in.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Receiver handles webhook requests.
type Receiver struct {
	// Secret is the webhook's secret, as in systemconfig.json.
	Secret string
	// Tolerance is how far a timestamp may be from Now (default 5 min).
	Tolerance time.Duration
	// Remember is how long a webhook-id is remembered (default 7 days:
	// longer than Odometer's three days of retries).
	Remember time.Duration
	Now      func() time.Time
	// Out receives the invoice lines.
	Out io.Writer

	mu   sync.Mutex
	seen map[string]time.Time
}

// Payload is the body of a webhook.
type Payload struct {
	Type       string `json:"type"`
	CustomerID string `json:"customerId"`
	Period     string `json:"period"`
	Data       struct {
		PeriodStart string             `json:"periodStart"`
		PeriodEnd   string             `json:"periodEnd"`
		PeriodKey   string             `json:"periodKey"`
		Events      map[string]float64 `json:"events"`
		EventCounts map[string]int64   `json:"eventCounts"`
		// Revision and Previous come with aggregation.updated.
		Revision int `json:"revision"`
		Previous *struct {
			Events      map[string]float64 `json:"events"`
			EventCounts map[string]int64   `json:"eventCounts"`
		} `json:"previous"`
	} `json:"data"`
	Created int64 `json:"created"`
}

var (
	errSignature = errors.New("signature does not match")
	errTimestamp = errors.New("timestamp is more than the tolerance away from now")
)

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if err := rc.Verify(r.Header, body); err != nil {
		status := http.StatusUnauthorized
		if errors.Is(err, errTimestamp) {
			status = http.StatusBadRequest
		}
		http.Error(w, err.Error(), status)
		return
	}
	id := r.Header.Get("webhook-id")
	// One delivery at a time per id: a repeat that arrives while the
	// first is being handled waits and is then dropped.
	rc.mu.Lock()
	defer rc.mu.Unlock()
	now := rc.now()
	if rc.seen == nil {
		rc.seen = map[string]time.Time{}
	}
	if _, dup := rc.seen[id]; dup {
		w.WriteHeader(http.StatusOK) // already handled: success, so it is not sent again
		return
	}
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "body is not a webhook payload", http.StatusBadRequest)
		return
	}
	for _, line := range InvoiceLines(&p) {
		fmt.Fprintln(rc.Out, line)
	}
	rc.seen[id] = now
	for k, t := range rc.seen {
		if now.Sub(t) > rc.remember() {
			delete(rc.seen, k)
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *Receiver) now() time.Time {
	if rc.Now == nil {
		return time.Now()
	}
	return rc.Now()
}

func (rc *Receiver) remember() time.Duration {
	if rc.Remember <= 0 {
		return 7 * 24 * time.Hour
	}
	return rc.Remember
}

// Verify checks both signatures of a request and its timestamp.
func (rc *Receiver) Verify(h http.Header, body []byte) error {
	tolerance := rc.Tolerance
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	now := rc.now()

	// Standard Webhooks: webhook-signature is one or more "v1,BASE64"
	// separated by spaces, each an HMAC-SHA256 of id.timestamp.body.
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	if id == "" || ts == "" || h.Get("webhook-signature") == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	if err := checkTimestamp(ts, now, tolerance); err != nil {
		return err
	}
	want := hmacSHA256(standardKey(rc.Secret), id+"."+ts+".", body)
	ok := false
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		v, b64, found := strings.Cut(sig, ",")
		if !found || v != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("webhook-signature: %w", errSignature)
	}

	// The template: X-Webhook-Signature is "v1=" and the lowercase hex
	// HMAC-SHA256, keyed with the secret string as written, of
	// timestamp.body.
	tts := h.Get("X-Webhook-Timestamp")
	hexSig, found := strings.CutPrefix(h.Get("X-Webhook-Signature"), "v1=")
	if tts == "" || !found {
		return errors.New("missing X-Webhook-Timestamp or X-Webhook-Signature")
	}
	if err := checkTimestamp(tts, now, tolerance); err != nil {
		return err
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || !hmac.Equal(got, hmacSHA256([]byte(rc.Secret), tts+".", body)) {
		return fmt.Errorf("X-Webhook-Signature: %w", errSignature)
	}
	return nil
}

func checkTimestamp(ts string, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q is not unix seconds", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errTimestamp
	}
	return nil
}

func hmacSHA256(key []byte, prefix string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, prefix)
	m.Write(body)
	return m.Sum(nil)
}

// standardKey is the Standard Webhooks key of a secret: the bytes of the
// base64 after whsec_, or, for any other secret, the secret as written.
func standardKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil && len(k) > 0 {
			return k
		}
	}
	return []byte(secret)
}

// InvoiceLines turns a payload into lines for a billing system: for
// aggregation.completed, one invoice line per event type; for
// aggregation.updated, one correction line per event type whose value
// changed, with the difference to bill or credit. Each line carries a
// reference (customer, period, key, revision) that makes it idempotent.
func InvoiceLines(p *Payload) []string {
	ref := fmt.Sprintf("%s_%s_%s", p.CustomerID, p.Period, p.Data.PeriodKey)
	types := make([]string, 0, len(p.Data.Events))
	for t := range p.Data.Events {
		types = append(types, t)
	}
	sort.Strings(types)
	var lines []string
	switch p.Type {
	case "aggregation.completed":
		for _, t := range types {
			lines = append(lines, fmt.Sprintf("invoice\t%s\t%s\t%s..%s\t%s\tquantity=%s\tevents=%d\tref=%s#1",
				p.CustomerID, p.Period, p.Data.PeriodStart, p.Data.PeriodEnd, t,
				num(p.Data.Events[t]), p.Data.EventCounts[t], ref))
		}
	case "aggregation.updated":
		for _, t := range types {
			was := 0.0
			if p.Data.Previous != nil {
				was = p.Data.Previous.Events[t]
			}
			now := p.Data.Events[t]
			if now == was {
				continue
			}
			lines = append(lines, fmt.Sprintf("correction\t%s\t%s\t%s..%s\t%s\tquantity=%s\twas=%s\tdelta=%+g\tref=%s#%d",
				p.CustomerID, p.Period, p.Data.PeriodStart, p.Data.PeriodEnd, t,
				num(now), num(was), now-was, ref, p.Data.Revision))
		}
	}
	return lines
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "address to listen on")
	path := flag.String("path", "/hooks", "path of the webhook")
	flag.Parse()
	secret := os.Getenv("WEBHOOK_SECRET")
	if secret == "" {
		log.Fatal("set WEBHOOK_SECRET to the webhook's secret from systemconfig.json")
	}
	mux := http.NewServeMux()
	mux.Handle(*path, &Receiver{Secret: secret, Out: os.Stdout})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	log.Printf("receiving webhooks on http://%s%s", *addr, *path)
	log.Fatal(srv.ListenAndServe())
}
