package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/odometer-dev/odometer"
)

// The dashboard: hand-written HTML, CSS and JavaScript under ui/, embedded
// in the binary and served at /ui/ without a key. The page asks the JSON
// API for its data with the key the user signs in with. See
// docs/DASHBOARD.md.

//go:embed ui
var uiFiles embed.FS

// uiCSP allows the page its own scripts, styles and API calls, and nothing
// else: no inline script or style, no other origin, no framing.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiAsset is one embedded file, ready to serve.
type uiAsset struct {
	body, gzipped []byte
	contentType   string
	etag          string
	// version is the hash that index.html puts in the file's URL (?v=),
	// so that a versioned URL may be cached for good.
	version string
}

// uiAssets are the embedded files by their name under /ui/ ("" is
// index.html), built once: each gzipped at start, and index.html with the
// version of every other file in its URLs.
var uiAssets = sync.OnceValue(func() map[string]*uiAsset {
	assets := map[string]*uiAsset{}
	var index []byte
	err := fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := uiFiles.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "ui/")
		if name == "index.html" {
			index = b
			return nil
		}
		assets[name] = newUIAsset(name, b)
		return nil
	})
	if err != nil {
		panic("embedded dashboard: " + err.Error())
	}
	names := make([]string, 0, len(assets))
	for n := range assets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		index = bytes.ReplaceAll(index, []byte(`"`+n+`"`), []byte(`"`+n+"?v="+assets[n].version+`"`))
	}
	assets[""] = newUIAsset("index.html", index)
	return assets
})

func newUIAsset(name string, b []byte) *uiAsset {
	sum := sha256.Sum256(b)
	a := &uiAsset{body: b, version: hex.EncodeToString(sum[:6])}
	a.etag = `"` + a.version + `"`
	a.contentType = mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		a.contentType = "text/javascript; charset=utf-8"
	case ".svg":
		a.contentType = "image/svg+xml"
	case "":
		a.contentType = "application/octet-stream"
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	if buf.Len() < len(b) {
		a.gzipped = buf.Bytes()
	}
	return a
}

// handleUI serves the dashboard's files. They are public: the data the
// page shows needs a key.
func (s *Server) handleUI(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	if name == "index.html" {
		name = ""
	}
	a := uiAssets()[name]
	if a == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Not found"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Vary", "Accept-Encoding")
	h.Set("ETag", a.etag)
	if name != "" && r.URL.Query().Get("v") == a.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// The page itself, or a file by an unversioned URL: ask each time,
		// answered 304 while unchanged.
		h.Set("Cache-Control", "no-cache")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gzipped != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		body = a.gzipped
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.TrimSpace(coding)
		if !strings.EqualFold(coding, "gzip") && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// uiState is what GET /stats keeps between requests.
type uiState struct {
	minutes minuteRing

	mu     sync.Mutex
	cached *storeStats

	totals    totalsCache
	directory directoryCache
}

// setupUI counts the events stored through s.Events per minute, for the
// dashboard's overview.
func (s *Server) setupUI() {
	if s.ui == nil {
		s.ui = &uiState{}
	}
	if s.Events == nil {
		return
	}
	if c, ok := s.Events.(*countedEvents); ok && c.ring == &s.ui.minutes {
		return
	}
	s.Events = &countedEvents{EventStore: s.Events, ring: &s.ui.minutes, now: func() time.Time { return s.Now() }}
}

// countedEvents counts the events it stores, by the minute they were
// stored in.
type countedEvents struct {
	odometer.EventStore
	ring *minuteRing
	now  func() time.Time
}

func (s *countedEvents) CreateEvents(ctx context.Context, events []odometer.Event) ([]bool, error) {
	dup, err := s.EventStore.CreateEvents(ctx, events)
	if err != nil {
		return dup, err
	}
	n := len(events)
	for _, d := range dup {
		if d {
			n--
		}
	}
	s.ring.add(s.now(), n)
	return dup, nil
}

// minuteRing holds the count of stored events of each of the last 60
// minutes, in this process only.
type minuteRing struct {
	mu    sync.Mutex
	slots [60]struct{ minute, count int64 }
}

func unixMinute(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s - 59) / 60
	}
	return s / 60
}

func (r *minuteRing) add(t time.Time, n int) {
	if n <= 0 {
		return
	}
	m := unixMinute(t)
	i := ((m % 60) + 60) % 60
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.slots[i].minute > m:
		return // older than the hour the ring holds
	case r.slots[i].minute < m:
		r.slots[i].minute, r.slots[i].count = m, 0
	}
	r.slots[i].count += int64(n)
}

// minuteCount is one minute of GET /stats' eventsPerMinute.
type minuteCount struct {
	Minute string `json:"minute"`
	Count  int64  `json:"count"`
}

// last returns the counts of the 60 minutes that end with now's, oldest
// first.
func (r *minuteRing) last(now time.Time) []minuteCount {
	end := unixMinute(now)
	out := make([]minuteCount, 60)
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range out {
		m := end - 59 + int64(k)
		slot := r.slots[((m%60)+60)%60]
		out[k].Minute = odometer.FormatTime(time.Unix(m*60, 0))
		if slot.minute == m {
			out[k].Count = slot.count
		}
	}
	return out
}

// statsTTL is how long GET /stats reuses what it read from the store.
const statsTTL = 10 * time.Second

// topN is how many customers GET /stats ranks per event type.
const topN = 10

// storeStats is the part of GET /stats read from the store.
type storeStats struct {
	at time.Time
	// rankedAt and watermark are when the month's ranking was read, and
	// the run state's watermark then.
	rankedAt    time.Time
	watermark   int64
	cfg         *odometer.Config
	backlog     odometer.Backlog
	deliveries  map[string]int64
	month       *monthJSON
	customers   int
	top         map[string][]topCustomer
	monthlyNote string
}

type monthJSON struct {
	PeriodKey   string `json:"periodKey"`
	PeriodStart string `json:"periodStart"`
	PeriodEnd   string `json:"periodEnd"`
}

type topCustomer struct {
	CustomerID string  `json:"customerId"`
	Value      float64 `json:"value"`
	Count      int64   `json:"count"`
}

// statsPage is how many aggregations GET /stats reads at a time.
const statsPage = 1000

// readStoreStats reads the backlog, the delivery counts, and the monthly
// aggregations of the month of now, every page of them, keeping the top
// customers of each event type. The ranking of prev is kept instead while
// no aggregation run has folded events since it was read (the run state's
// watermark has not moved), for up to totalsMaxAge: the aggregations
// change only in a run, and reading a month of 100,000 customers takes
// about a second.
func (s *Server) readStoreStats(ctx context.Context, cfg *odometer.Config, now time.Time, prev *storeStats) (*storeStats, error) {
	st := &storeStats{at: now, rankedAt: now, cfg: cfg, top: map[string][]topCustomer{}}
	var err error
	if st.backlog, err = s.Aggs.Backlog(ctx); err != nil {
		return nil, err
	}
	if st.deliveries, err = s.Deliveries.CountDeliveries(ctx); err != nil {
		return nil, err
	}
	run, err := s.Aggs.RunState(ctx)
	if err != nil {
		return nil, err
	}
	st.watermark = run.Watermark
	if prev != nil && prev.cfg == cfg && unchangedSince(prev.rankedAt, prev.watermark, run, now) &&
		prev.month != nil && odometer.Monthly.Key(now.In(cfg.Location)) == prev.month.PeriodKey {
		st.rankedAt, st.month, st.customers, st.top, st.monthlyNote = prev.rankedAt, prev.month, prev.customers, prev.top, prev.monthlyNote
		return st, nil
	}
	for name := range cfg.Events {
		st.top[name] = []topCustomer{}
	}
	key := odometer.Monthly.Key(now.In(cfg.Location))
	start, end, err := odometer.Monthly.Bounds(key, cfg.Location)
	if err != nil {
		return nil, err
	}
	st.month = &monthJSON{PeriodKey: key, PeriodStart: odometer.FormatTime(start), PeriodEnd: odometer.FormatTime(odometer.LastMilli(end))}
	monthly := false
	for _, p := range cfg.Periods {
		monthly = monthly || p == odometer.Monthly
	}
	if !monthly {
		st.monthlyNote = "the monthly period is not configured"
		return st, nil
	}
	f := odometer.AggregationFilter{Period: odometer.Monthly, From: &start, To: &start, Limit: statsPage}
	for {
		aggs, next, err := s.Aggs.FindAggregations(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, a := range aggs {
			if a.PeriodKey != key {
				continue
			}
			st.customers++
			for name, state := range a.States {
				m := cfg.Meter(name)
				if m == nil || state.Count() == 0 {
					continue
				}
				st.top[name] = rank(st.top[name], topCustomer{a.CustomerID, m.ValueOf(state, a.PeriodStart, a.PeriodEnd), state.Count()})
			}
		}
		if next == "" {
			return st, nil
		}
		f.Cursor = next
	}
}

// rank inserts c into top, kept sorted by value (highest first, then by
// customer) and at most topN long.
func rank(top []topCustomer, c topCustomer) []topCustomer {
	less := func(a, b topCustomer) bool {
		if a.Value != b.Value {
			return a.Value > b.Value
		}
		return a.CustomerID < b.CustomerID
	}
	if len(top) == topN && !less(c, top[topN-1]) {
		return top
	}
	i := sort.Search(len(top), func(i int) bool { return less(c, top[i]) })
	if len(top) < topN {
		top = append(top, topCustomer{})
	}
	copy(top[i+1:], top[i:len(top)-1])
	top[i] = c
	return top
}

// storeStats returns what was read from the store less than statsTTL ago,
// or reads it again. One request reads at a time; the others wait for its
// answer.
func (s *Server) storeStats(ctx context.Context, cfg *odometer.Config, now time.Time) (*storeStats, error) {
	s.ui.mu.Lock()
	defer s.ui.mu.Unlock()
	if c := s.ui.cached; c != nil && !now.Before(c.at) && now.Sub(c.at) < statsTTL &&
		odometer.Monthly.Key(now.In(cfg.Location)) == c.month.PeriodKey {
		return c, nil
	}
	st, err := s.readStoreStats(ctx, cfg, now, s.ui.cached)
	if err != nil {
		return nil, err
	}
	s.ui.cached = st
	return st, nil
}

// handleStats is GET /stats: the dashboard's overview of the whole
// service, so not for a key pinned to a customer.
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if pinned(r) != "" {
		s.writeError(w, r, odometer.Errorf(odometer.ENOTFOUND, "Not found"))
		return
	}
	cfg := s.Config()
	now := s.Now().UTC()
	st, err := s.storeStats(r.Context(), cfg, now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	lag := 0.0
	if st.backlog.Events > 0 {
		lag = max(now.Sub(st.backlog.Oldest).Seconds(), 0)
	}
	scope := odometer.ScopeRead
	if k := keyFromContext(r.Context()); k != nil {
		scope = k.Scope
	}
	out := map[string]any{
		"now":             odometer.FormatTime(now),
		"timezone":        cfg.Location.String(),
		"scope":           scope,
		"eventsPerMinute": s.ui.minutes.last(now),
		"lagSeconds":      lag,
		"backlog":         st.backlog.Events,
		"deliveries":      st.deliveries,
		"month":           st.month,
		"customers":       st.customers,
		"topCustomers":    st.top,
		"computedAt":      odometer.FormatTime(st.at),
	}
	if st.monthlyNote != "" {
		out["note"] = st.monthlyNote
	}
	writeJSON(w, http.StatusOK, out)
}
