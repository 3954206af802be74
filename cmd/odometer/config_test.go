package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("OK", func(t *testing.T) {
		r := mustRun(t, "config", "check", write("ok.json", testConfigJSON))
		if got, want := r.stdout, "ok\n"; got != want {
			t.Fatalf("stdout %q, want %q", got, want)
		}
		if !strings.Contains(r.stderr, "api.calls (sum)") || strings.Contains(r.stderr, "whsec_") {
			t.Fatalf("stderr %q: want a summary without the secret", r.stderr)
		}
	})

	for _, tt := range []struct {
		name, body, want string
	}{
		{"ErrUnknownKey", `{"events": {"a": {"op": "sum"}}, "extra": 1}`, "extra: unknown key"},
		{"ErrOp", `{"events": {"a": {"op": "median"}}}`, `events.a.op: unknown op "median"`},
		{"ErrPeriod", `{"periods": ["minutely"], "events": {"a": {"op": "sum"}}}`, `periods[0]: unknown period "minutely"`},
		{"ErrWebhookURL", `{"events": {"a": {"op": "sum"}}, "webhooks": [{"url": "ftp://x", "secret": "s"}]}`, "webhooks[0].url: malformed URL"},
		{"ErrJSON", `{`, "not a JSON object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := write(tt.name+".json", tt.body)
			r := mustFail(t, tt.want, "config", "check", p)
			if !strings.Contains(r.err.Error(), p) {
				t.Fatalf("error %q does not name the file", r.err)
			}
			if r.stdout != "" {
				t.Fatalf("stdout %q, want nothing", r.stdout)
			}
		})
	}
	t.Run("ErrMissing", func(t *testing.T) {
		mustFail(t, "no such file", "config", "check", filepath.Join(dir, "nope.json"))
	})
}

func TestWebhooksSecret(t *testing.T) {
	a := strings.TrimSpace(mustRun(t, "webhooks", "secret").stdout)
	b := strings.TrimSpace(mustRun(t, "webhooks", "secret").stdout)
	for _, s := range []string{a, b} {
		k, ok := strings.CutPrefix(s, "whsec_")
		raw, err := base64.StdEncoding.DecodeString(k)
		if !ok || err != nil || len(raw) != 32 {
			t.Fatalf("secret %q: want whsec_ and the base64 of 32 bytes", s)
		}
	}
	if a == b {
		t.Fatal("two secrets are equal")
	}
	// A fresh secret is accepted by the configuration.
	cfg := strings.Replace(testConfigJSON, "whsec_dGVzdCBzZWNyZXQ=", a, 1)
	p := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(p, []byte(cfg), 0o600)
	mustRun(t, "config", "check", p)
}
