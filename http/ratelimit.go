package http

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimiter limits the requests of each API key: a token bucket per key
// that refills at Rate tokens a second and holds at most Burst. It counts
// only requests that carry a valid key, after authentication, so one
// client's flood slows that client alone; the public routes and the
// requests refused with 401 are not counted.
type RateLimiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*rate.Limiter // by key id: as many as the store has keys
}

// NewRateLimiter returns a limiter of perSecond requests a second per key,
// in bursts of up to burst. A burst below 1 is the rate rounded up. now is
// the clock; nil is time.Now.
func NewRateLimiter(perSecond float64, burst int, now func() time.Time) *RateLimiter {
	if burst < 1 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	if now == nil {
		now = time.Now
	}
	return &RateLimiter{rate: rate.Limit(perSecond), burst: burst, now: now, keys: map[string]*rate.Limiter{}}
}

// Rate is the number of requests a second each key may make.
func (l *RateLimiter) Rate() float64 { return float64(l.rate) }

// Burst is the number of requests a key may make at once.
func (l *RateLimiter) Burst() int { return l.burst }

// Allow takes one request from the bucket of the key with this id. When
// the bucket is empty it takes nothing and returns how long until the
// next request would be allowed.
func (l *RateLimiter) Allow(keyID string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	lim := l.keys[keyID]
	if lim == nil {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.keys[keyID] = lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	wait := r.DelayFrom(now)
	if wait <= 0 {
		return true, 0
	}
	// Refused: give the token back, so that a client that keeps asking
	// while refused does not push its own next turn further away.
	r.CancelAt(now)
	return false, wait
}

// rateLimit wraps a handler that authorize has given a key: past the
// key's rate it answers 429 with Retry-After in whole seconds, rounded up.
func (s *Server) rateLimit(h http.HandlerFunc) http.HandlerFunc {
	if s.RateLimit == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if k := keyFromContext(r.Context()); k != nil {
			if ok, wait := s.RateLimit.Allow(k.ID); !ok {
				secs := max(1, int(math.Ceil(wait.Seconds())))
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				writeJSON(w, http.StatusTooManyRequests, map[string]any{
					"error": fmt.Sprintf("Too many requests for this key: the limit is %g a second, in bursts of %d; retry after %d s",
						s.RateLimit.Rate(), s.RateLimit.Burst(), secs),
					"retryAfter": secs,
				})
				return
			}
		}
		h(w, r)
	}
}
