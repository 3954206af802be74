package tests

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
)

// curlCommand is one curl example of the README.
type curlCommand struct {
	line int // 1-based line of the README where it starts
	text string
}

// shellFences are the info strings of the code blocks whose curl lines
// are run.
var shellFences = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true, "zsh": true}

var heredocRE = regexp.MustCompile(`<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)

// curlCommands returns the commands of the README's shell blocks that
// start with "curl ", each with its continuation lines, multi-line quoted
// strings and here-document.
func curlCommands(readme string) []curlCommand {
	lines := strings.Split(strings.ReplaceAll(readme, "\r\n", "\n"), "\n")
	var out []curlCommand
	fence, shell := "", false
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		if fence == "" {
			for _, f := range []string{"```", "~~~"} {
				if strings.HasPrefix(trimmed, f) {
					fence = f
					info := strings.Fields(strings.TrimLeft(trimmed, f[:1]))
					shell = len(info) > 0 && shellFences[strings.ToLower(info[0])]
				}
			}
			continue
		}
		if strings.HasPrefix(trimmed, fence) {
			fence = ""
			continue
		}
		if !shell {
			continue
		}
		text := strings.TrimPrefix(trimmed, "$ ")
		if !strings.HasPrefix(text, "curl ") {
			continue
		}
		start := i
		for (strings.HasSuffix(text, "\\") || openQuote(text)) && i+1 < len(lines) {
			i++
			text += "\n" + lines[i]
		}
		if m := heredocRE.FindStringSubmatch(text); m != nil {
			for i+1 < len(lines) {
				i++
				text += "\n" + lines[i]
				if strings.TrimSpace(lines[i]) == m[1] {
					break
				}
			}
		}
		out = append(out, curlCommand{line: start + 1, text: text})
	}
	return out
}

// openQuote reports whether s ends inside a shell quote.
func openQuote(s string) bool {
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q == '\'':
			if c == '\'' {
				q = 0
			}
		case c == '\\':
			i++
		case q == '"':
			if c == '"' {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		}
	}
	return q != 0
}

var (
	localURLRE    = regexp.MustCompile(`https?://(localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(:[0-9]+)?`)
	apiKeyRE      = regexp.MustCompile(`(?i)(x-apikey:\s*)([^\s'"]+)`)
	bearerRE      = regexp.MustCompile(`(?i)(authorization:\s*bearer\s+)([^\s'"]+)`)
	prettyPipeRE  = regexp.MustCompile(`(?m)\s*\|\s*(jq|python3? -m json\.tool)\b[^\n]*$`)
	anyURLRE      = regexp.MustCompile(`https?://[^\s'"\\]+`)
	placeholderRE = regexp.MustCompile(`(^|[^<$])<[A-Za-z][A-Za-z0-9_-]*>|(^|[^$])\{[A-Za-z][A-Za-z0-9_]*\}`)
	serveConfigRE = regexp.MustCompile(`(?m)\bserve\b[^\n]*?--config[= ]['"]?([^\s'"]+)`)
)

// printedKeyRE matches the admin key that the first start prints.
var printedKeyRE = regexp.MustCompile(regexp.QuoteMeta(odometer.KeyPrefix) + `[0-9a-f]{48}`)

// statusMarker precedes the status that curl writes after the body.
const statusMarker = "odometer-test-status:"

// rewriteCurl points a README command at the test server: local URLs to
// its address, API key headers to its key, no pretty-printing pipe, and
// curl options that fail on an HTTP error and print the status. It returns
// a reason instead when the command cannot run here as written.
func rewriteCurl(text, base, key string) (string, string) {
	text = localURLRE.ReplaceAllLiteralString(text, base)
	text = apiKeyRE.ReplaceAllString(text, "${1}"+key)
	text = bearerRE.ReplaceAllString(text, "${1}"+key)
	text = prettyPipeRE.ReplaceAllString(text, "")
	for _, u := range anyURLRE.FindAllString(text, -1) {
		if !strings.HasPrefix(u, base) {
			return "", "it calls " + u + ", not the local server"
		}
	}
	if m := placeholderRE.FindString(text); m != "" {
		return "", "it has a placeholder, " + strings.TrimSpace(m)
	}
	// -q, first, ignores any ~/.curlrc; --max-time bounds a hung request.
	text = "curl -q --max-time 15 -fsS -w '\\n" + statusMarker + "%{http_code}\\n' " + strings.TrimPrefix(text, "curl ")
	return text, ""
}

// readmeConfig is the configuration file the README starts the server
// with: the --config of its serve command, or systemconfig.json at the
// root, or none (the built-in example).
func readmeConfig(readme string) string {
	if m := serveConfigRE.FindStringSubmatch(readme); m != nil {
		p := m[1]
		if !filepath.IsAbs(p) {
			p = filepath.Join(moduleRoot, p)
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p := filepath.Join(moduleRoot, "systemconfig.json"); fileExists(p) {
		return p
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestREADMECommands runs the curl examples of README.md against the real
// binary: each must exit 0 and get a 2xx.
func TestREADMECommands(t *testing.T) {
	path := filepath.Join(moduleRoot, "README.md")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s does not exist yet: no README commands to check", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmds := curlCommands(string(b))
	if len(cmds) == 0 {
		t.Skipf("%s has no line starting with \"curl \" in a sh or bash block", path)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not on PATH")
	}

	// As the README says: the first start, without ODOMETER_API_KEY,
	// creates an admin key and prints it.
	dir := t.TempDir()
	opts := serverOptions{DB: filepath.Join(dir, "odometer.db"), Config: readmeConfig(string(b)), Dir: dir, Env: []string{"DRY_RUN=1",
		// The README's portal example needs a portal secret, as it says.
		"ODOMETER_PORTAL_SECRET=readme-portal-secret-0123456789abcdef"}}
	srv := startServer(t, opts)
	key := printedKeyRE.FindString(srv.Output())
	if key != "" {
		t.Logf("using the admin key printed by the first start (%s...)", key[:len(odometer.KeyPrefix)+6])
	} else {
		t.Logf("the first start printed no admin key; starting again with ODOMETER_API_KEY. Its output:\n%s", srv.Output())
		srv.Kill()
		key = "odo_test_readme_admin_key_0123456789"
		opts.DB, opts.Key = filepath.Join(dir, "odometer-2.db"), key
		srv = startServer(t, opts)
	}
	env := append(childEnv(),
		"ODOMETER_API_KEY="+key, "API_KEY="+key, "KEY="+key,
		"ODOMETER_URL="+srv.URL, "BASE_URL="+srv.URL, "URL="+srv.URL, "ODOMETER_ADDR="+srv.Addr,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	ran := 0
	for _, c := range cmds {
		t.Run(fmt.Sprintf("Line%d", c.line), func(t *testing.T) {
			text, why := rewriteCurl(c.text, srv.URL, key)
			if why != "" {
				t.Skipf("README.md:%d not run: %s:\n%s", c.line, why, c.text)
			}
			ran++
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "-c", text)
			cmd.Dir = moduleRoot
			cmd.Env = env
			cmd.WaitDelay = 2 * time.Second // a child of sh may hold the output open
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("README.md:%d: %v\n%s\noutput:\n%s\nserver output:\n%s", c.line, err, text, out, srv.Output())
			}
			if i := strings.LastIndex(string(out), statusMarker); i >= 0 {
				status := strings.TrimSpace(string(out[i+len(statusMarker):]))
				if !strings.HasPrefix(status, "2") {
					t.Fatalf("README.md:%d: status %s, want 2xx\n%s\noutput:\n%s", c.line, status, text, out)
				}
			}
		})
	}
	t.Logf("README.md: %d curl commands found, %d run", len(cmds), ran)
}

// TestREADMECurlExtraction checks what TestREADMECommands reads from a
// README and how it rewrites it.
func TestREADMECurlExtraction(t *testing.T) {
	readme := "# Title\n\n" +
		"```sh\n" +
		"odometer serve --config examples/systemconfig.json\n" +
		"curl http://localhost:8080/ping\n" +
		"$ curl -X POST http://localhost:8080/usage/api.calls \\\n" +
		"  -H 'x-apikey: YOUR_API_KEY' \\\n" +
		"  -d '{\"customerId\": \"cust_123\", \"value\": 1}'\n" +
		"curl -H \"Authorization: Bearer $ODOMETER_API_KEY\" -d '[\n" +
		"  {\"eventType\": \"api.calls\", \"customerId\": \"c\", \"value\": 1}\n" +
		"]' http://127.0.0.1:8080/usagebatch | jq .\n" +
		"curl -X POST http://localhost:8080/usagebatch -H 'x-apikey: k' -d @- <<'EOF'\n" +
		"[{\"eventType\": \"api.calls\", \"customerId\": \"c\", \"value\": 1}]\n" +
		"EOF\n" +
		"curl -X DELETE -H 'x-apikey: k' http://localhost:8080/keys/<id>\n" +
		"```\n\n" +
		"```json\ncurl http://localhost:8080/not-shell\n```\n" +
		"```bash\ncurl https://billing.example.com/hooks\n```\n"

	cmds := curlCommands(readme)
	wantLines := []int{5, 6, 9, 12, 15, 22}
	if got, want := len(cmds), len(wantLines); got != want {
		t.Fatalf("found %d commands, want %d: %+v", got, want, cmds)
	}
	for i, c := range cmds {
		if got, want := c.line, wantLines[i]; got != want {
			t.Errorf("command %d at line %d, want %d", i, got, want)
		}
	}
	if got, want := strings.Count(cmds[3].text, "\n"), 2; got != want {
		t.Errorf("here-document command has %d newlines, want %d: %q", got, want, cmds[3].text)
	}

	const base, key = "http://127.0.0.1:5555", "secret"
	tests := []struct {
		name    string
		cmd     string
		want    []string // substrings of the rewritten command
		skipped bool
	}{
		{"OK", cmds[0].text, []string{base + "/ping"}, false},
		{"OKKeyHeader", cmds[1].text, []string{"x-apikey: secret", base + "/usage/api.calls"}, false},
		{"OKBearerAndPipe", cmds[2].text, []string{"Bearer secret", base + "/usagebatch"}, false},
		{"OKHeredoc", cmds[3].text, []string{"<<'EOF'", "x-apikey: secret"}, false},
		{"SkipPlaceholder", cmds[4].text, nil, true},
		{"SkipRemoteURL", cmds[5].text, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := rewriteCurl(tt.cmd, base, key)
			if skipped := why != ""; skipped != tt.skipped {
				t.Fatalf("skipped %v (%s), want %v: %q", skipped, why, tt.skipped, got)
			}
			if tt.skipped {
				return
			}
			if !strings.HasPrefix(got, "curl -q ") {
				t.Errorf("rewritten command does not start with the test's curl options: %q", got)
			}
			if strings.Contains(got, "jq") || strings.Contains(got, "localhost") {
				t.Errorf("rewritten command still has jq or localhost: %q", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("rewritten command %q does not contain %q", got, w)
				}
			}
		})
	}

	if got, want := serveConfigRE.FindStringSubmatch(readme)[1], "examples/systemconfig.json"; got != want {
		t.Errorf("serve --config %q, want %q", got, want)
	}
}
