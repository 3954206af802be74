package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
)

// DefaultServer is the server of the commands that talk to one, unless
// --server or ODOMETER_URL says otherwise.
const DefaultServer = "http://127.0.0.1:8080"

// clientOptions are the flags of every command that talks to a server.
type clientOptions struct {
	server, apiKey string
	timeout        time.Duration
}

// addClientFlags adds --server, --api-key and --timeout. Their defaults
// come from the environment when the command runs, so that --help never
// shows a key.
func addClientFlags(cmd *cobra.Command, o *clientOptions) {
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "URL of the Odometer server (ODOMETER_URL; default "+DefaultServer+")")
	f.StringVar(&o.apiKey, "api-key", "", "API key (ODOMETER_API_KEY)")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "longest wait for one answer of the server")
}

// client returns the API client of the options.
func (o *clientOptions) client() (*odohttp.Client, error) {
	server := o.server
	if server == "" {
		server = envOr("ODOMETER_URL", DefaultServer)
	}
	server = strings.TrimRight(server, "/")
	if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
		return nil, fmt.Errorf("--server must be an http:// or https:// URL, not %q", server)
	}
	key := o.apiKey
	if key == "" {
		key = os.Getenv("ODOMETER_API_KEY")
	}
	if key == "" {
		return nil, errors.New("no API key: set --api-key or ODOMETER_API_KEY")
	}
	return &odohttp.Client{
		URL: server, Key: key, UserAgent: "odometer-cli/" + version,
		HTTP: &http.Client{Timeout: o.timeout},
	}, nil
}

// explain adds a hint to the errors a person can fix.
func explain(err error) error {
	var ae *odohttp.APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w (check --api-key or ODOMETER_API_KEY)", err)
		case http.StatusForbidden:
			return fmt.Errorf("%w (use a key with that scope)", err)
		}
	}
	return err
}

// parseTime parses a time flag as the server does: an RFC 3339 date-time
// or a date (midnight UTC).
func parseTime(v, name string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--%s must be an ISO 8601 date or date-time, such as 2026-01-13 or 2026-01-13T10:00:00Z", name)
}

// timeRange parses --from and --to.
func timeRange(from, to string) (time.Time, time.Time, error) {
	f, err := parseTime(from, "from")
	if err != nil {
		return f, f, err
	}
	t, err := parseTime(to, "to")
	return f, t, err
}

// formatTime shows an optional time as the API does.
func formatTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return odometer.FormatTime(*t)
}
