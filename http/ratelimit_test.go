package http

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// limiterClock is the injected clock of a rate limiter.
type limiterClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *limiterClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *limiterClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestRateLimiter_Allow(t *testing.T) {
	clock := &limiterClock{now: testNow}
	l := NewRateLimiter(2, 3, clock.Now)
	for i := range 3 {
		if ok, _ := l.Allow("key_a"); !ok {
			t.Fatalf("request %d of a burst of 3 refused", i+1)
		}
	}
	ok, wait := l.Allow("key_a")
	if ok {
		t.Fatal("request 4 of a burst of 3 allowed")
	}
	if got, want := wait, 500*time.Millisecond; got != want {
		t.Fatalf("wait %v, want %v", got, want)
	}
	// Refused requests take nothing: asking again and again while
	// refused does not push the next turn away.
	for range 10 {
		if _, w := l.Allow("key_a"); w != wait {
			t.Fatalf("a refused request moved the wait from %v to %v", wait, w)
		}
	}
	// Another key has its own bucket.
	if ok, _ := l.Allow("key_b"); !ok {
		t.Fatal("key_b refused because of key_a")
	}
	clock.Advance(499 * time.Millisecond)
	if ok, _ := l.Allow("key_a"); ok {
		t.Fatal("allowed 1 ms before the next token")
	}
	clock.Advance(time.Millisecond)
	if ok, _ := l.Allow("key_a"); !ok {
		t.Fatal("refused once the next token is there")
	}
	if ok, _ := l.Allow("key_a"); ok {
		t.Fatal("allowed two requests on one token")
	}
	// A long pause refills the bucket up to the burst, no more.
	clock.Advance(time.Hour)
	n := 0
	for {
		if ok, _ := l.Allow("key_a"); !ok {
			break
		}
		n++
	}
	if got, want := n, 3; got != want {
		t.Fatalf("%d requests allowed after an hour, want the burst of %d", got, want)
	}
}

func TestRateLimiter_DefaultBurst(t *testing.T) {
	for _, tt := range []struct {
		rate  float64
		burst int
	}{{0.5, 1}, {1, 1}, {2.5, 3}, {100, 100}} {
		if got := NewRateLimiter(tt.rate, 0, nil).Burst(); got != tt.burst {
			t.Errorf("rate %v: default burst %d, want %d", tt.rate, got, tt.burst)
		}
	}
}

func TestServer_RateLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		clock := &limiterClock{now: testNow}
		ts.API.RateLimit = NewRateLimiter(1, 2, clock.Now)
		ts.Server.Config.Handler = ts.API.Handler()

		const event = `{"customerId": "c", "value": 1}`
		ts.MustDo(t, http.StatusCreated, "POST", "/usage/api.calls", ts.IngestKey, event)
		ts.MustDo(t, http.StatusCreated, "POST", "/usage/api.calls", ts.IngestKey, event)
		r := ts.Do(t, "POST", "/usage/api.calls", ts.IngestKey, event)
		checkRefusal(t, r, http.StatusTooManyRequests, "Too many requests for this key: the limit is 1 a second, in bursts of 2; retry after 1 s", "")
		if got, want := r.Header.Get("Retry-After"), "1"; got != want {
			t.Fatalf("Retry-After %q, want %q", got, want)
		}
		if got, want := r.Map(t)["retryAfter"], float64(1); got != want {
			t.Fatalf("retryAfter %v, want %v", got, want)
		}
		ts.mustCount(t, 2)

		t.Run("OtherKeys", func(t *testing.T) {
			ts.MustDo(t, http.StatusOK, "GET", "/events", ts.ReadKey, "")
			ts.MustDo(t, http.StatusOK, "GET", "/keys", ts.AdminKey, "")
		})
		t.Run("PublicNotCounted", func(t *testing.T) {
			for range 5 {
				ts.MustDo(t, http.StatusOK, "GET", "/ping", "", "")
			}
		})
		t.Run("BeforeAuthorization", func(t *testing.T) {
			// A wrong key is refused as such, not as too many requests.
			checkRefusal(t, ts.Do(t, "POST", "/usage/api.calls", "odo_wrong", event), http.StatusUnauthorized, "Invalid API key", "")
		})
		t.Run("Refills", func(t *testing.T) {
			clock.Advance(time.Second)
			ts.MustDo(t, http.StatusCreated, "POST", "/usage/api.calls", ts.IngestKey, event)
			checkRefusal(t, ts.Do(t, "POST", "/usage/api.calls", ts.IngestKey, event), http.StatusTooManyRequests, "", "Too many requests")
			ts.mustCount(t, 3)
		})
	})
}
