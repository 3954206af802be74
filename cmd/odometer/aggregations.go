package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	odohttp "github.com/odometer-dev/odometer/http"
)

func newAggregationsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "aggregations",
		Aliases: []string{"aggs"},
		Short:   "List aggregations",
		Example: `  odometer aggregations list --customer cust_123 --period daily`,
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(newAggregationsListCommand())
	return cmd
}

// aggregationFilter is the filter flags of aggregations list and export.
type aggregationFilter struct {
	customer, period, from, to string
}

func addAggregationFilterFlags(cmd *cobra.Command, f *aggregationFilter) {
	fl := cmd.Flags()
	fl.StringVar(&f.customer, "customer", "", "only this customer's aggregations")
	fl.StringVar(&f.period, "period", "", "only this period: hourly, daily, weekly, monthly or yearly")
	fl.StringVar(&f.from, "from", "", "only periods starting at or after this time (2026-01-01 or 2026-01-01T00:00:00Z)")
	fl.StringVar(&f.to, "to", "", "only periods starting at or before this time")
	cmd.RegisterFlagCompletionFunc("period", cobra.FixedCompletions([]string{"hourly", "daily", "weekly", "monthly", "yearly"}, cobra.ShellCompDirectiveNoFileComp))
}

func (f aggregationFilter) query() (odohttp.AggregationQuery, error) {
	from, to, err := timeRange(f.from, f.to)
	return odohttp.AggregationQuery{CustomerID: f.customer, Period: f.period, From: from, To: to}, err
}

var aggregationHeader = []string{"CUSTOMER", "PERIOD", "KEY", "START", "END", "COMPLETE", "REVISION", "EVENTS", "WEBHOOK"}

func aggregationRow(a *odohttp.AggregationRecord) []string {
	types := make([]string, 0, len(a.Events))
	for t := range a.Events {
		types = append(types, t)
	}
	sort.Strings(types)
	var ev []string
	for _, t := range types {
		ev = append(ev, fmt.Sprintf("%s=%s (%d)", t, num(a.Events[t]), a.EventCounts[t]))
		for _, g := range a.Groups[t] {
			ev = append(ev, fmt.Sprintf("%s%s=%s (%d)", t, g.Group, num(g.Value), g.Count))
		}
	}
	wh := "pending"
	switch {
	case a.WebhookStatus.Delivered:
		wh = "delivered"
	case !a.Complete:
		wh = ""
	}
	return []string{a.CustomerID, a.Period, a.PeriodKey, a.PeriodStart, a.PeriodEnd, fmt.Sprint(a.Complete),
		fmt.Sprint(a.Revision), strings.Join(ev, " "), wh}
}

func newAggregationsListCommand() *cobra.Command {
	var o clientOptions
	var f aggregationFilter
	var output, cursor string
	var limit int
	var complete, all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List aggregations, newest period first",
		Long: `List aggregations, newest period first, with the filters of GET /aggregations.
--complete lists only periods that have ended; --complete=false only current ones.`,
		Example: `  odometer aggregations list
  odometer aggregations list --customer cust_123 --period daily --from 2026-01-01 --to 2026-02-01
  odometer aggregations list --period monthly --complete --all --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if limit < 1 || limit > 1000 {
				return errors.New("--limit must be from 1 to 1000")
			}
			q, err := f.query()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("complete") {
				q.Complete = &complete
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			q.Limit = limit
			p := newPrinter(cmd.OutOrStdout(), output, aggregationHeader)
			return printPages(cmd, p, "aggregations", all, cursor, func(cursor string) ([]odohttp.AggregationRecord, string, error) {
				q.Cursor = cursor
				return c.Aggregations(cmd.Context(), q)
			}, aggregationRow)
		},
	}
	addClientFlags(cmd, &o)
	addAggregationFilterFlags(cmd, &f)
	addOutputFlag(cmd, &output)
	fl := cmd.Flags()
	fl.BoolVar(&complete, "complete", false, "only ended periods (--complete=false: only current ones)")
	fl.IntVar(&limit, "limit", 100, "aggregations per page (1 to 1000)")
	fl.BoolVar(&all, "all", false, "follow the cursors: every aggregation that matches")
	fl.StringVar(&cursor, "cursor", "", "start at this cursor (printed by an earlier page)")
	return cmd
}
