package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
	"github.com/odometer-dev/odometer/postgres"
	"github.com/odometer-dev/odometer/sqlite"
)

type serveOptions struct {
	addr, db, config  string
	aggregateInterval time.Duration
	logFormat         string
	logLevel          string
	maxEventBytes     int64
	maxBatchBytes     int64
	allowPrivate      bool
	rateLimit         float64
	portalSecret      string
	publicURL         string
	rateBurst         int
	readHeaderTimeout time.Duration
}

func newServeCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Odometer server",
		Long: `Run the Odometer server: the HTTP API, the aggregation scheduler and the
webhook sender, on embedded SQLite by default.

Every flag can also be set in the environment: ODOMETER_ADDR, ODOMETER_DB,
ODOMETER_CONFIG, ODOMETER_AGGREGATE_INTERVAL, ODOMETER_LOG_FORMAT. The
environment variable ODOMETER_API_KEY, when set, is accepted as an admin key.`,
		Example: `  odometer serve
  odometer serve --addr 0.0.0.0:8080 --db /var/lib/odometer/odometer.db --config /etc/odometer/systemconfig.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), o, cmd.Flags().Changed("config") || os.Getenv("ODOMETER_CONFIG") != "", cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	interval, err := time.ParseDuration(envOr("ODOMETER_AGGREGATE_INTERVAL", "5m"))
	if err != nil {
		interval = 5 * time.Minute
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", envOr("ODOMETER_ADDR", "127.0.0.1:8080"), "address to listen on (ODOMETER_ADDR)")
	f.StringVar(&o.db, "db", envOr("ODOMETER_DB", "odometer.db"), "database: a SQLite path, sqlite:PATH, or a postgres:// URL (ODOMETER_DB)")
	f.StringVar(&o.config, "config", envOr("ODOMETER_CONFIG", "systemconfig.json"), "configuration file (ODOMETER_CONFIG)")
	f.DurationVar(&o.aggregateInterval, "aggregate-interval", interval, "how often the scheduler aggregates and finalizes (ODOMETER_AGGREGATE_INTERVAL)")
	f.StringVar(&o.logFormat, "log-format", envOr("ODOMETER_LOG_FORMAT", ""), "log format: text or json (default: text on a terminal, json otherwise)")
	f.StringVar(&o.logLevel, "log-level", envOr("ODOMETER_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	f.Int64Var(&o.maxEventBytes, "max-event-bytes", odohttp.DefaultMaxEventBytes, "largest body of POST /usage/{eventType}")
	f.BoolVar(&o.allowPrivate, "webhook-allow-private", envBool("ODOMETER_WEBHOOK_ALLOW_PRIVATE"), "allow webhooks to loopback and private addresses (ODOMETER_WEBHOOK_ALLOW_PRIVATE=1)")
	f.Int64Var(&o.maxBatchBytes, "max-batch-bytes", odohttp.DefaultMaxBatchBytes, "largest body of POST /usagebatch")
	f.Float64Var(&o.rateLimit, "rate-limit", envFloat("ODOMETER_RATE_LIMIT", 0), "requests a second allowed to each API key, past which it gets 429; 0 for no limit (ODOMETER_RATE_LIMIT)")
	f.StringVar(&o.portalSecret, "portal-secret", envOr("ODOMETER_PORTAL_SECRET", ""), "secret that signs portal links, at least 32 bytes; changing it revokes every link (ODOMETER_PORTAL_SECRET)")
	f.StringVar(&o.publicURL, "public-url", envOr("ODOMETER_PUBLIC_URL", ""), "the server's address as its users reach it, such as https://usage.example.com, for absolute portal links (ODOMETER_PUBLIC_URL)")
	f.IntVar(&o.rateBurst, "rate-burst", int(envFloat("ODOMETER_RATE_BURST", 0)), "requests a key may send at once under --rate-limit; 0 for the rate rounded up (ODOMETER_RATE_BURST)")
	f.DurationVar(&o.readHeaderTimeout, "read-header-timeout", envDuration("ODOMETER_READ_HEADER_TIMEOUT", 10*time.Second), "how long a client may take to send a request's headers (ODOMETER_READ_HEADER_TIMEOUT)")
	return cmd
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level must be debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json")
}

// openStore opens the store named by --db; log is the server's, nil for
// another command. Only the server ingests: a command that opens the SQLite store beside a running server leaves its
// id index alone. ODOMETER_SQLITE_ID_FLUSH sets how many new ids the
// SQLite id index keeps in memory before it writes a run (the tests make
// it small, so that runs are written and merged while they kill the
// server).
func openStore(ctx context.Context, db string, log *slog.Logger) (odometer.Store, error) {
	switch {
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return postgres.Open(ctx, db)
	case strings.HasPrefix(db, "sqlite:"):
		db = strings.TrimPrefix(db, "sqlite:")
	}
	if db == "" {
		return nil, errors.New("--db: empty path")
	}
	return sqlite.OpenOptions(ctx, db, sqlite.Options{Logger: log, NoIngest: log == nil, IDFlushAt: int(envFloat("ODOMETER_SQLITE_ID_FLUSH", 0))})
}

// redactDB hides the password of a database URL, for the log.
func redactDB(db string) string {
	if u, err := url.Parse(db); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return db
}

func runServe(ctx context.Context, o serveOptions, configGiven bool, stdout, stderr io.Writer) error {
	log, err := newLogger(o.logFormat, o.logLevel, stderr)
	if err != nil {
		return err
	}
	cfg, err := odometer.LoadConfig(o.config)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) || configGiven {
			return err
		}
		cfg = odometer.ExampleConfig()
		log.Warn("no configuration file; using the built-in example configuration", "file", o.config,
			"eventTypes", strings.Join(cfg.EventOrder, ","))
	}
	if o.aggregateInterval <= 0 {
		return errors.New("--aggregate-interval must be positive")
	}
	if o.portalSecret != "" && len(o.portalSecret) < odometer.MinPortalSecret {
		return fmt.Errorf("--portal-secret must be at least %d bytes (odometer webhooks secret prints a random one)", odometer.MinPortalSecret)
	}
	if o.publicURL != "" {
		if u, err := url.Parse(o.publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--public-url must be an absolute http:// or https:// URL, not %q", o.publicURL)
		}
	}
	if o.rateLimit < 0 || o.rateBurst < 0 {
		return errors.New("--rate-limit and --rate-burst must be 0 or more")
	}
	switch {
	case o.readHeaderTimeout < 0:
		return errors.New("--read-header-timeout must be positive")
	case o.readHeaderTimeout == 0:
		o.readHeaderTimeout = 10 * time.Second
	}

	store, err := openStore(ctx, o.db, log)
	if err != nil {
		return err
	}
	defer store.Close()

	var adminHash *[32]byte
	if k := os.Getenv("ODOMETER_API_KEY"); k != "" {
		h := odometer.HashKey(k)
		adminHash = &h
	} else {
		keys, err := store.FindKeys(ctx)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			secret, k := odometer.NewAPIKey(odometer.ScopeAdmin, "", "first admin key", time.Now())
			if err := store.CreateKey(ctx, k); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Created an admin API key. It is shown this once; keep it safe:\n\n    %s\n\n"+
				"Send it with every request, for example:\n    curl -H 'x-apikey: %s' http://%s/events\n\n", secret, secret, o.addr)
		}
	}

	var cfgMu sync.RWMutex
	current := func() *odometer.Config {
		cfgMu.RLock()
		defer cfgMu.RUnlock()
		return cfg
	}
	agg := &odometer.Aggregator{Store: store, Config: current, Now: time.Now, Customers: store}
	metrics := odohttp.NewMetrics(version, time.Now)
	agg.Skipped = metrics.AddSkipped
	sender := odohttp.NewSender(o.allowPrivate)
	defer sender.Close()
	dryRun := envBool("DRY_RUN")
	disp := &odometer.Dispatcher{Store: metrics.Deliveries(store), Sender: sender, Config: current, Now: time.Now, Logger: log, DryRun: dryRun}
	if dryRun {
		log.Warn("DRY_RUN is set: webhooks are logged and marked delivered, never sent")
	}
	srv := &odohttp.Server{
		Events: store, Keys: store, Aggs: store, Deliveries: store, Customers: store, Alerts: store, Aggregator: agg, Kick: disp.Kick,
		Config: current, Now: time.Now, Logger: log, Version: version,
		AdminKeyHash: adminHash, Ready: store.Ping,
		MaxEventBytes: o.maxEventBytes, MaxBatchBytes: o.maxBatchBytes,
		Metrics: metrics, PortalSecret: []byte(o.portalSecret), PublicURL: o.publicURL,
	}
	if o.rateLimit > 0 {
		srv.RateLimit = odohttp.NewRateLimiter(o.rateLimit, o.rateBurst, time.Now)
		log.Info("rate limit per API key", "perSecond", o.rateLimit, "burst", srv.RateLimit.Burst())
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: o.readHeaderTimeout,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      10 * time.Minute, // a trigger answers when the work is done
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info("odometer serving", "addr", ln.Addr().String(), "db", redactDB(o.db), "version", version,
		"aggregateInterval", o.aggregateInterval.String(), "timezone", cfg.Timezone)

	var wg sync.WaitGroup
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(4)
	go func() {
		defer wg.Done()
		schedule(runCtx, agg, store, o.aggregateInterval, log, disp.Kick, metrics)
	}()
	// Alerts are evaluated every second, apart from the aggregation and
	// never waiting for it: a usage.threshold_reached goes out seconds
	// after the event that crossed, whatever the aggregation interval.
	alerts := &odometer.AlertEvaluator{Store: store, Customers: store, Config: current, Now: time.Now, Logger: log, Fired: func(n int) {
		metrics.AddAlertsFired(n)
		disp.Kick()
	}}
	go func() {
		defer wg.Done()
		alerts.Run(runCtx, alertEvery)
	}()
	// SIGHUP reloads the configuration file: a file that does not pass the
	// start-up validation is refused, and the one in force stays.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-hup:
			}
			next, err := odometer.LoadConfig(o.config)
			if err == nil {
				cfgMu.Lock()
				err = next.CheckReload(cfg)
				cfgMu.Unlock()
			}
			if err != nil {
				log.Error("configuration not reloaded; the one in force stays", "err", err)
				continue
			}
			cfgMu.Lock()
			cfg = next
			cfgMu.Unlock()
			log.Info("configuration reloaded", "file", o.config, "eventTypes", strings.Join(next.EventOrder, ","), "meters", strings.Join(next.MeterOrder, ","),
				"webhooks", len(next.Webhooks), "timezone", next.Timezone)
			disp.Kick()
		}
	}()
	go func() {
		defer wg.Done()
		disp.Run(runCtx, time.Second)
	}()

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		cancel()
		wg.Wait()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	err = hs.Shutdown(sctx)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// alertEvery is how often the alert evaluator looks at new events.
const alertEvery = time.Second

// pruneEvery is how often the scheduler applies the retention.
const pruneEvery = time.Hour

// schedule runs the aggregator at start and every interval until ctx ends,
// and applies the events' retention at most every pruneEvery.
func schedule(ctx context.Context, agg *odometer.Aggregator, events odometer.EventStore, every time.Duration, log *slog.Logger, kick func(), metrics *odohttp.Metrics) {
	t := time.NewTicker(every)
	defer t.Stop()
	var pruned time.Time
	for {
		if time.Since(pruned) >= pruneEvery {
			pruned = time.Now()
			n, err := agg.Prune(ctx, events)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Error("retention: pruning events failed", "err", err)
			case n > 0:
				log.Info("retention: events pruned", "events", n, "duration", time.Since(pruned).Round(time.Millisecond))
			}
		}
		start := time.Now()
		res, err := agg.Run(ctx)
		if metrics != nil && ctx.Err() == nil {
			metrics.ObserveRun(odohttp.RunScheduled, time.Since(start), err)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("scheduled aggregation failed", "err", err)
		case err == nil && (res.EventsProcessed > 0 || res.PeriodsCompleted > 0 || res.PeriodsRevised > 0):
			log.Info("aggregated", "events", res.EventsProcessed, "created", res.AggregationsCreated,
				"updated", res.AggregationsUpdated, "completed", res.PeriodsCompleted, "revised", res.PeriodsRevised,
				"duration", time.Since(start).Round(time.Millisecond))
			if res.PeriodsCompleted > 0 || res.PeriodsRevised > 0 {
				kick()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// envFloat is the number in the environment variable name, or def when it
// is unset or not a number.
func envFloat(name string, def float64) float64 {
	v, err := strconv.ParseFloat(os.Getenv(name), 64)
	if err != nil {
		return def
	}
	return v
}

// envDuration is the duration in the environment variable name, or def
// when it is unset or not a duration.
func envDuration(name string, def time.Duration) time.Duration {
	v, err := time.ParseDuration(os.Getenv(name))
	if err != nil {
		return def
	}
	return v
}
