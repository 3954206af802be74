package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsCustomers are customer ids that encoding/json, left to itself, would
// write differently from JSON.stringify, or that a careless writer gets
// wrong: HTML characters, quotes, a backslash, non-ASCII letters, emoji,
// and the line and paragraph separators.
var jsCustomers = []string{
	"sub_a<b>&c",
	`it's "quoted"`,
	`back\slash\u2028`,
	"kunde-øæå-顧客",
	"emoji-🚀😀",
	"line\u2028separator\u2029paragraph",
	"</script><!--&amp;",
	"all<>&'\"\\é😀\u2028",
}

// jsValues are values as a client writes them; JSON.stringify writes
// several of them differently (1e+21, 0 for -0).
var jsValues = []string{"0.1", "1e21", "1e-7", "-0", "123456789012345680000", "0.30000000000000004", "5e-324", "1e300", "-2.5E-8"}

// jsEventTypes holds names that are array indices ("9", "10"), which a
// JavaScript object lists first and in numeric order, and names with HTML
// characters and a line separator.
var jsEventTypes = map[string]string{
	"api.calls":         "sum",
	"9":                 "max",
	"10":                "avg",
	"0":                 "last",
	"a<b>&'\"\\":        "sum",
	"é😀\u2028":          "min",
	"storage.bytes":     "max",
	"4294967295":        "count",
	"response.time.ms":  "avg",
	"zz.after.indices!": "first",
}

// receiverLine is what examples/node-receiver prints for each webhook.
type receiverLine struct {
	Listening  int    `json:"listening"`
	Verified   bool   `json:"verified"`
	Problem    string `json:"problem"`
	Identical  bool   `json:"identical"`
	WebhookID  string `json:"webhookId"`
	Type       string `json:"type"`
	CustomerID string `json:"customerId"`
	Period     string `json:"period"`
}

// startNodeReceiver runs examples/node-receiver with secret on a free port
// and returns its URL and the channel of its lines.
func startNodeReceiver(t *testing.T, secret string) (string, <-chan receiverLine) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("Node.js is not installed: the JavaScript receiver test is skipped; with CI set it fails instead")
		}
		t.Fatal("CI is set and node is not on the PATH")
	}
	cmd := exec.Command(node, filepath.Join(moduleRoot, "examples", "node-receiver", "receiver.js"))
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+secret, "PORT=0")
	dieWithParent(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("receiver stderr:\n%s", stderr.String())
		}
	})
	lines := make(chan receiverLine, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l receiverLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l.Problem = "unreadable line: " + sc.Text()
			}
			lines <- l
		}
	}()
	select {
	case l := <-lines:
		if l.Listening == 0 {
			t.Fatalf("the receiver did not start: %+v; stderr:\n%s", l, stderr.String())
		}
		return fmt.Sprintf("http://127.0.0.1:%d/hooks", l.Listening), lines
	case <-time.After(10 * time.Second):
		t.Fatalf("the receiver did not start; stderr:\n%s", stderr.String())
	}
	return "", nil
}

// TestJavaScriptReceiver: the real binary sends its webhooks to a Node
// receiver that verifies the template's v1= signature over
// JSON.stringify(JSON.parse(body)), as Express apps do. Every completion
// and every correction, for customers, event types and values that
// encoding/json alone would write otherwise, verifies, and the body as
// sent is already byte for byte what JavaScript writes.
func TestJavaScriptReceiver(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	url, lines := startNodeReceiver(t, secret)

	events := map[string]any{}
	for name, op := range jsEventTypes {
		events[name] = map[string]string{"op": op}
	}
	cfg, err := json.Marshal(map[string]any{
		"periods":  []string{"hourly", "daily"},
		"events":   events,
		"webhooks": []map[string]any{{"url": url, "secret": secret, "enabled": true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "systemconfig.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, serverOptions{
		DB: filepath.Join(dir, "odometer.db"), Config: filepath.Join(dir, "systemconfig.json"), Dir: dir,
		Key: "odo_js_receiver_admin_key", Env: []string{"ODOMETER_WEBHOOK_ALLOW_PRIVATE=1"},
	})

	// Every customer has an event of every type, in an hour that has
	// ended (so its hour and its day complete at the trigger), each with
	// one of the values; the values go round so that each type gets each.
	at := time.Now().UTC().Add(-26 * time.Hour).Truncate(time.Hour).Add(10 * time.Minute)
	names := make([]string, 0, len(jsEventTypes))
	for name := range jsEventTypes {
		names = append(names, name)
	}
	post := func(round int) {
		t.Helper()
		var b strings.Builder
		b.WriteString("[")
		n := 0
		for i, c := range jsCustomers {
			for j, name := range names {
				if n > 0 {
					b.WriteString(",")
				}
				n++
				cj, _ := json.Marshal(c)
				tj, _ := json.Marshal(name)
				fmt.Fprintf(&b, `{"eventType":%s,"customerId":%s,"value":%s,"timestamp":%q}`,
					tj, cj, jsValues[(i+j+round)%len(jsValues)], at.Add(time.Duration(round)*time.Second).Format(time.RFC3339))
			}
		}
		b.WriteString("]")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		status, body, _, err := srv.do(ctx, "POST", "/usagebatch", []byte(b.String()))
		if err != nil || status != http.StatusCreated {
			t.Fatalf("POST /usagebatch: %d %v: %s", status, err, body)
		}
	}
	trigger := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		status, body, _, err := srv.do(ctx, "POST", "/aggregations/trigger", nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("POST /aggregations/trigger: %d %v: %s", status, err, body)
		}
	}

	var mu sync.Mutex
	var got []receiverLine
	wait := func(want int) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n >= want {
				return
			}
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the receiver exited after %d webhooks", n)
				}
				if !l.Verified || !l.Identical {
					t.Errorf("webhook %s (%s, customer %q, %s) refused: %s; body identical to JSON.stringify's: %v",
						l.WebhookID, l.Type, l.CustomerID, l.Period, l.Problem, l.Identical)
				}
				mu.Lock()
				got = append(got, l)
				mu.Unlock()
			case <-deadline:
				t.Fatalf("%d webhooks received in 60s, want %d; server output:\n%s", n, want, srv.Output())
			}
		}
	}

	// Completions: one per customer and period (hourly, daily).
	post(0)
	trigger()
	completions := len(jsCustomers) * 2
	wait(completions)
	// Corrections: late events change every completed period.
	post(1)
	trigger()
	wait(2 * completions)

	types := map[string]int{}
	customers := map[string]bool{}
	for _, l := range got {
		types[l.Type]++
		customers[l.CustomerID] = true
	}
	if types["aggregation.completed"] != completions || types["aggregation.updated"] != completions {
		t.Errorf("webhooks by type %v, want %d of each", types, completions)
	}
	for _, c := range jsCustomers {
		if !customers[c] {
			t.Errorf("no webhook for customer %q", c)
		}
	}
	// Every delivery is recorded delivered: a refused signature is a 401,
	// which would leave its delivery pending for a retry.
	var delivered []map[string]any
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		srv.getJSON(t, "/deliveries?status=delivered&limit=1000", &delivered)
		if len(delivered) >= len(got) || time.Now().After(deadline) {
			break
		}
	}
	if len(delivered) != 2*completions {
		var pending []map[string]any
		srv.getJSON(t, "/deliveries?status=pending", &pending)
		t.Errorf("%d deliveries delivered, want %d; pending: %v", len(delivered), 2*completions, pending)
	}
	report(t, "JavaScript receiver: %d webhooks (%d customers, %d event types, %d values) verified over JSON.stringify(JSON.parse(body))",
		len(got), len(jsCustomers), len(jsEventTypes), len(jsValues))
}
