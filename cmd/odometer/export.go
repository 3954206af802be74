package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
)

func newExportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "export",
		Short:   "Export invoice-ready files",
		Example: `  odometer export aggregations --period monthly --from 2026-01-01 --to 2026-02-01 > january.csv`,
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(newExportAggregationsCommand())
	return cmd
}

// exportRow is one aggregation in an export: flat, with every event type.
type exportRow struct {
	CustomerID  string                           `json:"customerId"`
	Period      string                           `json:"period"`
	PeriodKey   string                           `json:"periodKey"`
	PeriodStart string                           `json:"periodStart"`
	PeriodEnd   string                           `json:"periodEnd"`
	Events      map[string]float64               `json:"events"`
	EventCounts map[string]int64                 `json:"eventCounts"`
	Groups      map[string][]odometer.GroupValue `json:"groups,omitempty"`
	Revision    int                              `json:"revision"`
	Complete    bool                             `json:"complete"`
}

func newExportAggregationsCommand() *cobra.Command {
	var o clientOptions
	var f aggregationFilter
	var format, out string
	var incomplete bool
	cmd := &cobra.Command{
		Use:   "aggregations",
		Short: "Export the aggregations of a period type, one row per customer and period",
		Long: `Export the aggregations of one period type as an invoice-ready file, following
the cursors to the last one, sorted by customer and period start.

CSV columns: customerId, period, periodKey, periodStart, periodEnd, then for each
event type (those of the server's configuration, then any other found) its value
and its count (TYPE and TYPE.count), then revision and complete. An event type
without events in a period has an empty value and a count of 0.

Only ended periods are exported, unless --incomplete.`,
		Example: `  odometer export aggregations --period monthly --from 2026-01-01 --to 2026-02-01 > january.csv
  odometer export aggregations --period daily --customer cust_123 --format json --out cust_123.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.period == "" {
				return errors.New("--period is required: hourly, daily, weekly, monthly or yearly")
			}
			if _, err := odometer.ParsePeriod(f.period); err != nil {
				return fmt.Errorf("--period must be hourly, daily, weekly, monthly or yearly")
			}
			if format != "csv" && format != "json" {
				return fmt.Errorf("--format must be csv or json, not %q", format)
			}
			q, err := f.query()
			if err != nil {
				return err
			}
			if !incomplete {
				t := true
				q.Complete = &t
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			var types []string
			if cfg, err := c.Config(cmd.Context()); err == nil {
				types = cfg.MeterNames()
			} else if ae := (*odohttp.APIError)(nil); errors.As(err, &ae) && ae.Status != 403 {
				return explain(err)
			}
			var rows []exportRow
			q.Limit = 1000
			for {
				page, next, err := c.Aggregations(cmd.Context(), q)
				if err != nil {
					return explain(err)
				}
				for _, a := range page {
					rows = append(rows, exportRow{a.CustomerID, a.Period, a.PeriodKey, a.PeriodStart, a.PeriodEnd,
						a.Events, a.EventCounts, a.Groups, a.Revision, a.Complete})
				}
				if next == "" {
					break
				}
				q.Cursor = next
			}
			sort.Slice(rows, func(i, j int) bool {
				if rows[i].CustomerID != rows[j].CustomerID {
					return rows[i].CustomerID < rows[j].CustomerID
				}
				return rows[i].PeriodStart < rows[j].PeriodStart
			})
			types = withFoundTypes(types, rows)

			w := cmd.OutOrStdout()
			var file *os.File
			if out != "" && out != "-" {
				if file, err = os.Create(out); err != nil {
					return err
				}
				defer file.Close()
				w = file
			}
			if format == "json" {
				if rows == nil {
					rows = []exportRow{}
				}
				b, err := marshalIndent(rows, "", "  ")
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
					return err
				}
			} else if err := writeExportCSV(w, types, rows); err != nil {
				return err
			}
			if file != nil {
				if err := file.Close(); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Exported %d aggregations.\n", len(rows))
			return nil
		},
	}
	addClientFlags(cmd, &o)
	addAggregationFilterFlags(cmd, &f)
	fl := cmd.Flags()
	fl.StringVar(&format, "format", "csv", "file format: csv or json")
	fl.StringVar(&out, "out", "", "write to this file instead of standard output")
	fl.BoolVar(&incomplete, "incomplete", false, "also export periods that have not ended yet")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"csv", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// withFoundTypes adds to types those found in rows but not configured
// (an event type removed from the configuration still has its history).
func withFoundTypes(types []string, rows []exportRow) []string {
	known := map[string]bool{}
	for _, t := range types {
		known[t] = true
	}
	var extra []string
	for _, r := range rows {
		for t := range r.EventCounts {
			if !known[t] {
				known[t] = true
				extra = append(extra, t)
			}
		}
	}
	sort.Strings(extra)
	return append(types, extra...)
}

// writeExportCSV writes one row per customer and period, with every
// meter's value and count; and, when some meter has groupBy, one more row
// per group after it, with the group (a JSON object) in the group column
// and the values of the meters that have that group.
func writeExportCSV(w io.Writer, types []string, rows []exportRow) error {
	cw := csv.NewWriter(w)
	grouped := false
	for _, r := range rows {
		grouped = grouped || len(r.Groups) > 0
	}
	header := []string{"customerId", "period", "periodKey", "periodStart", "periodEnd"}
	if grouped {
		header = append(header, "group")
	}
	for _, t := range types {
		header = append(header, t, t+".count")
	}
	header = append(header, "revision", "complete")
	cw.Write(header)
	for _, r := range rows {
		write := func(group string, value func(t string) (float64, int64, bool)) {
			rec := []string{r.CustomerID, r.Period, r.PeriodKey, r.PeriodStart, r.PeriodEnd}
			if grouped {
				rec = append(rec, group)
			}
			for _, t := range types {
				v, n, ok := value(t)
				x := ""
				if ok && (n > 0 || v != 0) { // a gauge held with no event counts none
					x = num(v)
				}
				c := ""
				if ok {
					c = strconv.FormatInt(n, 10)
				}
				rec = append(rec, x, c)
			}
			rec = append(rec, strconv.Itoa(r.Revision), strconv.FormatBool(r.Complete))
			cw.Write(rec)
		}
		write("", func(t string) (float64, int64, bool) {
			v, ok := r.Events[t]
			return v, r.EventCounts[t], ok || !grouped
		})
		// The groups of every grouped meter, by group, in order.
		byGroup := map[string]map[string]odometer.GroupValue{}
		var keys []string
		for meter, gs := range r.Groups {
			for _, g := range gs {
				k := string(g.Group)
				if byGroup[k] == nil {
					byGroup[k] = map[string]odometer.GroupValue{}
					keys = append(keys, k)
				}
				byGroup[k][meter] = g
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			write(k, func(t string) (float64, int64, bool) { g, ok := byGroup[k][t]; return g.Value, g.Count, ok })
		}
	}
	cw.Flush()
	return cw.Error()
}
