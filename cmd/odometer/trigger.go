package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newTriggerCommand() *cobra.Command {
	var o clientOptions
	var output string
	cmd := &cobra.Command{
		Use:   "trigger",
		Short: "Aggregate now, the current periods included, and wait until done",
		Long: `Aggregate now (POST /aggregations/trigger, admin): every period with new events,
the current incomplete ones included. The answer comes when the work is done.
Webhooks go out only for completed periods.`,
		Example: `  odometer trigger
  odometer trigger --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := c.Trigger(cmd.Context())
			if err != nil {
				return explain(err)
			}
			d := time.Since(start)
			return printOne(cmd.OutOrStdout(), output,
				[]string{"EVENTS", "CREATED", "UPDATED", "COMPLETED", "REVISED", "SECONDS"},
				[]string{fmt.Sprint(res.EventsProcessed), fmt.Sprint(res.AggregationsCreated), fmt.Sprint(res.AggregationsUpdated),
					fmt.Sprint(res.PeriodsCompleted), fmt.Sprint(res.PeriodsRevised), fmt.Sprintf("%.3f", d.Seconds())},
				res)
		},
	}
	addClientFlags(cmd, &o)
	addOutputFlag(cmd, &output)
	return cmd
}
