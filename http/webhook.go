package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/odometer-dev/odometer"
)

// Sender sends webhook requests: no redirects followed, a 15-second
// timeout, and, unless AllowPrivate, no connection to a loopback, private,
// link-local or unique-local address. The address is checked when it is
// dialled, so neither DNS rebinding nor a redirect can slip past.
type Sender struct {
	client *http.Client
}

var _ odometer.WebhookSender = (*Sender)(nil)

// WebhookTimeout bounds one try.
const WebhookTimeout = 15 * time.Second

// NewSender returns a Sender.
func NewSender(allowPrivate bool) *Sender {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = refusePrivate
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the guard
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: WebhookTimeout,
	}
	return &Sender{client: &http.Client{
		Transport: tr,
		Timeout:   WebhookTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// Close closes idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }

// errPrivate is the refusal of a private target.
var errPrivate = errors.New("refused: the webhook target resolves to a private, loopback or link-local address (start the server with --webhook-allow-private to allow it)")

func refusePrivate(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return errPrivate
	}
	if !PublicAddr(ap.Addr()) {
		return errPrivate
	}
	return nil
}

// PublicAddr reports whether a is an address a webhook may be sent to:
// not loopback, private (RFC 1918, fc00::/7), link-local (169.254.0.0/16,
// fe80::/10, so not the cloud metadata address), unspecified, multicast,
// shared (100.64.0.0/10), or an IPv4-mapped IPv6 form of any of those.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	if a.Is4() {
		b := a.As4()
		if b[0] == 0 || (b[0] == 100 && b[1]&0xc0 == 64) || b[0] >= 240 {
			return false
		}
	}
	return true
}

// Send implements odometer.WebhookSender.
func (s *Sender) Send(ctx context.Context, r odometer.WebhookRequest) odometer.WebhookResponse {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return odometer.WebhookResponse{Err: fmt.Errorf("bad webhook URL")}
	}
	for k, v := range r.Headers {
		req.Header[k] = []string{v} // as written: webhook-id, not Webhook-Id
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, errPrivate) {
			return odometer.WebhookResponse{Err: errPrivate}
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return odometer.WebhookResponse{Err: fmt.Errorf("timed out after %s", WebhookTimeout)}
		}
		return odometer.WebhookResponse{Err: fmt.Errorf("request failed: %v", errors.Unwrap(err))}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return odometer.WebhookResponse{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// retryAfter parses Retry-After: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
