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
// IPv6 forms that carry an IPv4 address (NAT64 64:ff9b::/96, 6to4
// 2002::/16) are judged by that address; local-use NAT64 (64:ff9b:1::/48),
// deprecated site-local (fec0::/10) and IPv4-compatible (::/96) addresses
// are refused.
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
		return true
	}
	b := a.As16()
	switch {
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 0 &&
		b[6] == 0 && b[7] == 0 && b[8] == 0 && b[9] == 0 && b[10] == 0 && b[11] == 0: // 64:ff9b::/96
		return PublicAddr(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1: // 64:ff9b:1::/48
		return false
	case b[0] == 0x20 && b[1] == 0x02: // 2002::/16
		return PublicAddr(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	case b[0] == 0xfe && b[1]&0xc0 == 0xc0: // fec0::/10
		return false
	case [12]byte(b[:12]) == [12]byte{}: // ::/96
		return false
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
