package http_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
)

// countingServer is a receiver on a real port that counts its requests
// and answers with answer (200 when nil).
type countingServer struct {
	*httptest.Server
	hits   atomic.Int64
	answer http.HandlerFunc
}

func newCountingServer(tb testing.TB, ln net.Listener, answer http.HandlerFunc) *countingServer {
	tb.Helper()
	cs := &countingServer{answer: answer}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.hits.Add(1)
		if cs.answer != nil {
			cs.answer(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	if ln == nil {
		cs.Server = httptest.NewServer(h)
	} else {
		cs.Server = httptest.NewUnstartedServer(h)
		cs.Server.Listener.Close()
		cs.Server.Listener = ln
		cs.Server.Start()
	}
	tb.Cleanup(cs.Close)
	return cs
}

// webhookRequest is a signed-looking request to url.
func webhookRequest(url string) odometer.WebhookRequest {
	return odometer.WebhookRequest{URL: url, Body: []byte(`{"type":"aggregation.completed"}`), Headers: map[string]string{
		"Content-Type": "application/json", "webhook-id": "msg_test",
	}}
}

// refusedTargets are addresses a webhook must never reach: each is
// refused by the guard before a connection is tried, so even the
// unroutable ones answer at once rather than after a connect timeout.
var refusedTargets = []struct {
	name, host string
}{
	{"Loopback4", "127.0.0.1"},
	{"Loopback6", "[::1]"},
	{"Private10", "10.0.0.1"},
	{"Private172", "172.16.0.1"},
	{"Private192", "192.168.1.1"},
	{"Metadata", "169.254.169.254"},
	{"UniqueLocal", "[fc00::1]"},
	{"LinkLocal6", "[fe80::1]"},
	{"MappedLoopback", "[::ffff:127.0.0.1]"},
	{"MappedPrivate", "[::ffff:10.0.0.1]"},
	{"Unspecified", "0.0.0.0"},
	{"Shared", "100.64.0.1"},
	{"Localhost", "localhost"},
	{"NAT64Loopback", "[64:ff9b::7f00:1]"},
}

// TestSender_RefusesPrivate: without --webhook-allow-private every
// private, loopback, link-local, shared or unspecified target is refused
// with an error that names the flag, and a real server listening there
// gets nothing.
func TestSender_RefusesPrivate(t *testing.T) {
	// Real receivers on the loopback addresses, to prove nothing reaches
	// them; 0.0.0.0 and localhost would reach the IPv4 one.
	v4 := newCountingServer(t, nil, nil)
	_, port, _ := net.SplitHostPort(v4.Listener.Addr().String())
	var v6 *countingServer
	if ln, err := net.Listen("tcp", "[::1]:"+port); err == nil {
		v6 = newCountingServer(t, ln, nil)
	}
	s := odohttp.NewSender(false)
	defer s.Close()
	for _, tt := range refusedTargets {
		t.Run(tt.name, func(t *testing.T) {
			// A deadline far shorter than a connect timeout: an answer
			// from the guard comes well within it; a dial that went out
			// to an unroutable address would not.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			res := s.Send(ctx, webhookRequest("http://"+tt.host+":"+port+"/hooks"))
			if res.Err == nil {
				t.Fatalf("Send to %s: status %d, want a refusal", tt.host, res.Status)
			}
			if msg := res.Err.Error(); !strings.HasPrefix(msg, "refused:") || !strings.Contains(msg, "--webhook-allow-private") {
				t.Fatalf("Send to %s: %q, want the guard's refusal naming --webhook-allow-private", tt.host, msg)
			}
			if ctx.Err() != nil {
				t.Fatalf("Send to %s: the refusal came only after the deadline", tt.host)
			}
		})
	}
	if got := v4.hits.Load(); got != 0 {
		t.Fatalf("the IPv4 loopback receiver got %d requests, want 0", got)
	}
	if v6 != nil && v6.hits.Load() != 0 {
		t.Fatalf("the IPv6 loopback receiver got %d requests, want 0", v6.hits.Load())
	}
}

// TestSender_AllowPrivate: with --webhook-allow-private a loopback
// receiver is reached, with the headers as written.
func TestSender_AllowPrivate(t *testing.T) {
	var gotID, gotCT string
	rc := newCountingServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		gotID, gotCT = r.Header.Get("webhook-id"), r.Header.Get("Content-Type")
		w.WriteHeader(http.StatusAccepted)
	})
	s := odohttp.NewSender(true)
	defer s.Close()
	res := s.Send(context.Background(), webhookRequest(rc.URL+"/hooks"))
	if res.Err != nil || res.Status != http.StatusAccepted {
		t.Fatalf("Send = %d, %v; want 202", res.Status, res.Err)
	}
	if gotID != "msg_test" || gotCT != "application/json" {
		t.Fatalf("receiver saw webhook-id %q, Content-Type %q", gotID, gotCT)
	}
	if got := rc.hits.Load(); got != 1 {
		t.Fatalf("receiver got %d requests, want 1", got)
	}
}

// TestSender_NoRedirects: a redirect is answered as it is: its target is
// never requested. (Without --webhook-allow-private a private target
// would also be refused by the guard when dialled; here the first server
// must be reachable, so loopback is allowed and the redirect itself is
// what must stop the request.)
func TestSender_NoRedirects(t *testing.T) {
	private := newCountingServer(t, nil, nil)
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			first := newCountingServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", strings.Replace(private.URL, "127.0.0.1", "localhost", 1)+"/internal")
				w.WriteHeader(code)
			})
			s := odohttp.NewSender(true)
			defer s.Close()
			res := s.Send(context.Background(), webhookRequest(first.URL))
			if res.Err != nil || res.Status != code {
				t.Fatalf("Send = %d, %v; want %d", res.Status, res.Err, code)
			}
		})
	}
	if got := private.hits.Load(); got != 0 {
		t.Fatalf("the redirect target got %d requests, want 0", got)
	}
}

// TestSender_RetryAfter: Retry-After is read in seconds or as an HTTP
// date; anything else is ignored.
func TestSender_RetryAfter(t *testing.T) {
	tests := []struct {
		name, header string
		min, max     time.Duration
	}{
		{"Seconds", "120", 120 * time.Second, 120 * time.Second},
		{"Date", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), 58 * time.Minute, time.Hour},
		{"PastDate", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0, 0},
		{"Zero", "0", 0, 0},
		{"Negative", "-5", 0, 0},
		{"Garbage", "soon", 0, 0},
		{"None", "", 0, 0},
	}
	s := odohttp.NewSender(true)
	defer s.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newCountingServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
				if tt.header != "" {
					w.Header().Set("Retry-After", tt.header)
				}
				w.WriteHeader(http.StatusServiceUnavailable)
			})
			res := s.Send(context.Background(), webhookRequest(rc.URL))
			if res.Err != nil || res.Status != http.StatusServiceUnavailable {
				t.Fatalf("Send = %d, %v; want 503", res.Status, res.Err)
			}
			if res.RetryAfter < tt.min || res.RetryAfter > tt.max {
				t.Fatalf("RetryAfter = %s for %q, want within [%s, %s]", res.RetryAfter, tt.header, tt.min, tt.max)
			}
		})
	}
}

// TestSender_Timeout: a receiver that does not answer in time is a
// failed try with a timeout error, not a hang.
func TestSender_Timeout(t *testing.T) {
	release := make(chan struct{})
	rc := newCountingServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		<-release
	})
	defer close(release)
	s := odohttp.NewSender(true)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res := s.Send(ctx, webhookRequest(rc.URL))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "timed out") {
		t.Fatalf("Send = %d, %v; want a timeout", res.Status, res.Err)
	}
}

// TestSender_ConnectionRefused: nothing listening is a transport error.
func TestSender_ConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := odohttp.NewSender(true)
	defer s.Close()
	res := s.Send(context.Background(), webhookRequest("http://"+addr+"/"))
	if res.Err == nil || res.Status != 0 || !strings.Contains(res.Err.Error(), "request failed") {
		t.Fatalf("Send = %d, %v; want a failed request", res.Status, res.Err)
	}
}

var publicAddrTests = []struct {
	addr string
	want bool
}{
	// Public.
	{"8.8.8.8", true},
	{"1.1.1.1", true},
	{"93.184.216.34", true},
	{"2606:4700:4700::1111", true},
	{"2001:4860:4860::8888", true},
	{"::ffff:8.8.8.8", true},
	{"100.63.255.255", true},
	{"100.128.0.0", true},
	{"172.15.255.255", true},
	{"172.32.0.0", true},
	{"11.0.0.1", true},
	{"192.169.0.1", true},
	{"169.253.255.255", true},
	// Loopback.
	{"127.0.0.1", false},
	{"127.255.255.254", false},
	{"::1", false},
	// RFC 1918 and unique-local.
	{"10.0.0.1", false},
	{"10.255.255.255", false},
	{"172.16.0.1", false},
	{"172.31.255.255", false},
	{"192.168.0.1", false},
	{"192.168.255.255", false},
	{"fc00::1", false},
	{"fd12:3456:789a::1", false},
	// Link-local, the cloud metadata address among them.
	{"169.254.169.254", false},
	{"169.254.0.1", false},
	{"fe80::1", false},
	{"fe80::1%eth0", false},
	// Unspecified, "this network", multicast, reserved, broadcast.
	{"0.0.0.0", false},
	{"0.1.2.3", false},
	{"::", false},
	{"224.0.0.1", false},
	{"239.255.255.250", false},
	{"ff02::1", false},
	{"ff0e::1", false},
	{"240.0.0.1", false},
	{"255.255.255.255", false},
	// Shared address space (carrier-grade NAT).
	{"100.64.0.0", false},
	{"100.64.0.1", false},
	{"100.127.255.255", false},
	// IPv4-mapped IPv6 forms of private addresses.
	{"::ffff:127.0.0.1", false},
	{"::ffff:10.0.0.1", false},
	{"::ffff:169.254.169.254", false},
	{"::ffff:100.64.0.1", false},
	{"::ffff:0.0.0.0", false},
	// IPv6 forms that carry an IPv4 address are judged by it: NAT64 and
	// 6to4 would otherwise reach a private IPv4 address through a
	// translator.
	{"64:ff9b::808:808", true},
	{"64:ff9b::7f00:1", false},
	{"64:ff9b::a9fe:a9fe", false},
	{"2002:808:808::1", true},
	{"2002:7f00:1::1", false},
	{"2002:a00:1::1", false},
	// Local-use NAT64, deprecated site-local and IPv4-compatible forms.
	{"64:ff9b:1::808:808", false},
	{"fec0::1", false},
	{"::7f00:1", false},
	{"::a00:1", false},
}

func TestPublicAddr(t *testing.T) {
	for _, tt := range publicAddrTests {
		t.Run(tt.addr, func(t *testing.T) {
			a, err := netip.ParseAddr(tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := odohttp.PublicAddr(a); got != tt.want {
				t.Fatalf("PublicAddr(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
	if odohttp.PublicAddr(netip.Addr{}) {
		t.Fatal("PublicAddr of the zero Addr = true, want false")
	}
}
