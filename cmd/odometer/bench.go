package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
)

type benchOptions struct {
	clientOptions
	mode         string
	concurrency  int
	duration     time.Duration
	events       int
	customers    int
	batchSize    int
	eventType    string
	ids          bool
	noAggregate  bool
	allowRemote  bool
	output       string
	maxErrorRate float64
}

func newBenchCommand() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a server with usage events and measure throughput and latency",
		Long: `Load a server with usage events, like pgbench: --concurrency clients post events
(one per request with --mode single, --batch-size per request with --mode batch)
for --duration, or until --events are sent, for --customers customers. It prints
the events per second and the latency of the requests (p50, p90, p99, max), then
times one aggregation run (POST /aggregations/trigger) and one aggregations query.

It stops by itself. It sends only to a server on this machine (a loopback
address), unless --allow-remote. The events it stores stay: use a scratch
database (odometer serve --db /tmp/bench.db), or delete them afterwards with
odometer events delete --customer ... (its customers are bench_0, bench_1, ...).`,
		Example: `  odometer bench --mode batch --concurrency 4 --duration 10s
  odometer bench --mode single --concurrency 16 --events 100000 --customers 1000
  odometer bench --server http://127.0.0.1:8080 --api-key $ADMIN_KEY --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("duration") && cmd.Flags().Changed("events") {
				o.duration = 0
			}
			return runBench(cmd, o)
		},
	}
	addClientFlags(cmd, &o.clientOptions)
	f := cmd.Flags()
	f.StringVar(&o.mode, "mode", "batch", "single (POST /usage/{eventType}) or batch (POST /usagebatch)")
	f.IntVar(&o.concurrency, "concurrency", 4, "clients sending at once")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send (default 10s, or none when --events is given)")
	f.IntVar(&o.events, "events", 0, "stop after this many events (0: no limit but --duration)")
	f.IntVar(&o.customers, "customers", 100, "distinct customers the events are spread over")
	f.IntVar(&o.batchSize, "batch-size", 100, "events per request in batch mode (at most 1000)")
	f.StringVar(&o.eventType, "event-type", "", "event type to send (default: the first of the server's configuration)")
	f.BoolVar(&o.ids, "ids", false, "give every event a client id (exercises deduplication)")
	f.BoolVar(&o.noAggregate, "no-aggregate", false, "skip the second phase (one trigger, one aggregations query)")
	f.BoolVar(&o.allowRemote, "allow-remote", false, "allow a server that is not on this machine")
	f.Float64Var(&o.maxErrorRate, "max-error-rate", 0.5, "stop early when more than this share of the first 100 requests fail")
	f.StringVarP(&o.output, "output", "o", outputTable, "report format: table or json")
	cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"single", "batch"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// benchReport is what a bench measured.
type benchReport struct {
	Mode         string         `json:"mode"`
	Concurrency  int            `json:"concurrency"`
	Customers    int            `json:"customers"`
	EventType    string         `json:"eventType"`
	Seconds      float64        `json:"seconds"`
	Events       int64          `json:"events"`
	Requests     int64          `json:"requests"`
	Errors       int64          `json:"errors"`
	ErrorsBy     map[string]int `json:"errorsBy,omitempty"`
	EventsPerSec float64        `json:"eventsPerSecond"`
	RequestsPS   float64        `json:"requestsPerSecond"`
	Latency      latencyReport  `json:"latency"`
	Trigger      *timedReport   `json:"trigger,omitempty"`
	Query        *timedReport   `json:"query,omitempty"`
}

// latencyReport holds the request latency percentiles, in milliseconds.
type latencyReport struct {
	P50 float64 `json:"p50Ms"`
	P90 float64 `json:"p90Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

type timedReport struct {
	Ms     float64 `json:"ms"`
	Detail string  `json:"detail"`
}

func runBench(cmd *cobra.Command, o benchOptions) error {
	switch {
	case o.mode != "single" && o.mode != "batch":
		return errors.New("--mode must be single or batch")
	case o.concurrency < 1 || o.concurrency > 1024:
		return errors.New("--concurrency must be from 1 to 1024")
	case o.customers < 1:
		return errors.New("--customers must be at least 1")
	case o.batchSize < 1 || o.batchSize > odometer.MaxBatch:
		return fmt.Errorf("--batch-size must be from 1 to %d", odometer.MaxBatch)
	case o.events < 0 || o.duration < 0:
		return errors.New("--events and --duration must not be negative")
	case o.events == 0 && o.duration == 0:
		return errors.New("give --duration or --events: bench must know when to stop")
	case o.output != outputTable && o.output != outputJSON:
		return fmt.Errorf("--output must be table or json, not %q", o.output)
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	if !o.allowRemote {
		if err := checkLocal(cmd.Context(), c.URL); err != nil {
			return err
		}
	}
	c.HTTP = &http.Client{Timeout: o.timeout, Transport: &http.Transport{
		MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency * 2, IdleConnTimeout: 30 * time.Second,
	}}
	defer c.HTTP.CloseIdleConnections()
	ctx := cmd.Context()
	if o.eventType == "" {
		cfg, err := c.Config(ctx)
		if err != nil {
			return fmt.Errorf("cannot read the server's event types (give --event-type): %w", explain(err))
		}
		names := cfg.EventTypeNames()
		if len(names) == 0 {
			return errors.New("the server has no event type")
		}
		o.eventType = names[0]
	}
	if o.mode == "single" {
		o.batchSize = 1
	}
	stderr := cmd.ErrOrStderr()
	limit := "until " + o.duration.String()
	if o.events > 0 {
		limit = fmt.Sprintf("%d events", o.events)
		if o.duration > 0 {
			limit += " or " + o.duration.String()
		}
	}
	fmt.Fprintf(stderr, "bench: %s mode, %d clients, %d customers, %s, event type %s\n", o.mode, o.concurrency, o.customers, limit, o.eventType)

	rep := &benchReport{Mode: o.mode, Concurrency: o.concurrency, Customers: o.customers, EventType: o.eventType, ErrorsBy: map[string]int{}}
	lat, err := benchLoad(ctx, c, o, rep)
	if err != nil {
		return err
	}
	if rep.Seconds > 0 {
		rep.EventsPerSec = float64(rep.Events) / rep.Seconds
		rep.RequestsPS = float64(rep.Requests) / rep.Seconds
	}
	rep.Latency = percentiles(lat)

	if !o.noAggregate && ctx.Err() == nil {
		start := time.Now()
		res, err := c.Trigger(ctx)
		if err != nil {
			return fmt.Errorf("trigger: %w", explain(err))
		}
		rep.Trigger = &timedReport{ms(time.Since(start)), fmt.Sprintf("%d events folded, %d aggregations created, %d updated",
			res.EventsProcessed, res.AggregationsCreated, res.AggregationsUpdated)}
		start = time.Now()
		aggs, _, err := c.Aggregations(ctx, odohttp.AggregationQuery{CustomerID: "bench_0", Limit: 100})
		if err != nil {
			return fmt.Errorf("aggregations: %w", explain(err))
		}
		rep.Query = &timedReport{ms(time.Since(start)), fmt.Sprintf("GET /aggregations?customerId=bench_0&limit=100: %d rows", len(aggs))}
	}
	printBench(cmd.OutOrStdout(), o.output, rep)
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return nil
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }

// benchLoad runs the first phase and returns the latency of every request.
func benchLoad(ctx context.Context, c *odohttp.Client, o benchOptions, rep *benchReport) ([]time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.duration > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, o.duration)
		defer stop()
	}
	var budget atomic.Int64
	budget.Store(math.MaxInt64)
	if o.events > 0 {
		budget.Store(int64(o.events))
	}
	// take reserves up to n events of the budget.
	take := func(n int) int {
		for {
			left := budget.Load()
			k := min(int64(n), left)
			if k <= 0 {
				return 0
			}
			if budget.CompareAndSwap(left, left-k) {
				return int(k)
			}
		}
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var mu sync.Mutex
	var all []time.Duration
	var fatal error
	var events, requests, failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)))
			lat := make([]time.Duration, 0, 4096)
			errs := map[string]int{}
			seq := 0
			event := func(batch bool) map[string]any {
				e := map[string]any{"customerId": "bench_" + strconv.Itoa(rng.IntN(o.customers)), "value": 1 + rng.IntN(100)}
				if batch {
					e["eventType"] = o.eventType
				}
				if o.ids {
					seq++
					e["id"] = fmt.Sprintf("bench-%s-%d-%d", run, w, seq)
				}
				return e
			}
			defer func() {
				mu.Lock()
				all = append(all, lat...)
				for k, v := range errs {
					rep.ErrorsBy[k] += v
				}
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				n := take(o.batchSize)
				if n == 0 {
					return
				}
				var body []byte
				if o.mode == "single" {
					body, _ = json.Marshal(event(false))
				} else {
					batch := make([]map[string]any, n)
					for i := range batch {
						batch[i] = event(true)
					}
					body, _ = json.Marshal(batch)
				}
				t := time.Now()
				var err error
				if o.mode == "single" {
					_, err = c.PostEvent(ctx, o.eventType, body)
				} else {
					_, err = c.SendBatch(ctx, body)
				}
				d := time.Since(t)
				if err != nil && ctx.Err() != nil {
					return // cut short by the end: not a measurement
				}
				r := requests.Add(1)
				lat = append(lat, d)
				if err == nil {
					events.Add(int64(n))
					continue
				}
				f := failed.Add(1)
				var ae *odohttp.APIError
				key := "connection"
				if errors.As(err, &ae) {
					key = strconv.Itoa(ae.Status)
					if ae.Status == 400 || ae.Status == 401 || ae.Status == 403 || ae.Status == 404 {
						mu.Lock()
						if fatal == nil {
							fatal = explain(err)
						}
						mu.Unlock()
						cancel()
						return
					}
				}
				errs[key]++
				if r >= 100 && float64(f)/float64(r) > o.maxErrorRate {
					mu.Lock()
					if fatal == nil {
						fatal = fmt.Errorf("stopped: %d of %d requests failed (last: %v)", f, r, err)
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	rep.Events, rep.Requests, rep.Errors = events.Load(), requests.Load(), failed.Load()
	if fatal != nil {
		return nil, fatal
	}
	return all, nil
}

// percentiles returns the nearest-rank percentiles of lat.
func percentiles(lat []time.Duration) latencyReport {
	if len(lat) == 0 {
		return latencyReport{}
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		return ms(lat[max(i, 0)])
	}
	return latencyReport{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(lat[len(lat)-1])}
}

// checkLocal refuses a server that is not on this machine.
func checkLocal(ctx context.Context, server string) error {
	u, err := url.Parse(server)
	if err != nil {
		return err
	}
	host := u.Hostname()
	refuse := fmt.Errorf("bench sends heavy load: %s is not on this machine (a loopback address); give --allow-remote to load it anyway", host)
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() {
			return nil
		}
		return refuse
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(ips) == 0 {
		return refuse
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return refuse
		}
	}
	return nil
}

func printBench(w io.Writer, format string, r *benchReport) {
	if format == outputJSON {
		b, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintf(w, "mode:          %s, %d clients, %d customers, event type %s\n", r.Mode, r.Concurrency, r.Customers, r.EventType)
	fmt.Fprintf(w, "duration:      %.2fs\n", r.Seconds)
	fmt.Fprintf(w, "events:        %d (%.0f events/s)\n", r.Events, r.EventsPerSec)
	fmt.Fprintf(w, "requests:      %d (%.0f requests/s), %d failed\n", r.Requests, r.RequestsPS, r.Errors)
	if len(r.ErrorsBy) > 0 {
		keys := make([]string, 0, len(r.ErrorsBy))
		for k := range r.ErrorsBy {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-12s %d\n", k+":", r.ErrorsBy[k])
		}
	}
	fmt.Fprintf(w, "latency (ms):  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	if r.Trigger != nil {
		fmt.Fprintf(w, "trigger:       %.3f ms (%s)\n", r.Trigger.Ms, r.Trigger.Detail)
	}
	if r.Query != nil {
		fmt.Fprintf(w, "query:         %.3f ms (%s)\n", r.Query.Ms, r.Query.Detail)
	}
}
