package main

import (
	"errors"
	"fmt"
	"math"

	"github.com/spf13/cobra"

	odohttp "github.com/odometer-dev/odometer/http"
)

func newAlertsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Create, list or delete usage alerts",
		Example: `  odometer alerts create --meter api.calls --period daily --threshold 10000 --customer cust_123
  odometer alerts list
  odometer alerts delete alr_1a2b3c4d5e6f7a8b9c0d1e2f`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newAlertsCreateCommand(), newAlertsListCommand(), newAlertsDeleteCommand())
	return cmd
}

var alertHeader = []string{"ID", "METER", "PERIOD", "THRESHOLD", "CUSTOMER", "CREATED"}

func alertRow(a *odohttp.AlertRecord) []string {
	customer := a.CustomerID
	if customer == "" {
		customer = "(every customer)"
	}
	return []string{a.ID, a.Meter, string(a.Period), num(a.Threshold), customer, a.CreatedAt}
}

func newAlertsCreateCommand() *cobra.Command {
	var o clientOptions
	var output string
	var in odohttp.AlertInput
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a usage alert (admin)",
		Long: `Create a usage alert (POST /alerts, admin): when a customer's value of the
meter in the current period first reaches the threshold, every enabled
webhook gets usage.threshold_reached, once per alert, customer and period,
within seconds of the event that crossed it. Without --customer, the alert
watches every customer. The meter's op must be sum, count, max or unique.`,
		Example: `  odometer alerts create --meter api.calls --period daily --threshold 10000
  odometer alerts create --meter llm.tokens --period monthly --threshold 1e6 --customer cust_123`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if in.Meter == "" || in.Period == "" {
				return errors.New("--meter and --period are required")
			}
			if math.IsNaN(in.Threshold) || math.IsInf(in.Threshold, 0) || in.Threshold <= 0 {
				return errors.New("--threshold must be a number greater than 0")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			a, err := c.CreateAlert(cmd.Context(), in)
			if err != nil {
				return explain(err)
			}
			return printOne(cmd.OutOrStdout(), output, alertHeader, alertRow(a), a)
		},
	}
	addClientFlags(cmd, &o)
	addOutputFlag(cmd, &output)
	fl := cmd.Flags()
	fl.StringVar(&in.Meter, "meter", "", "the meter watched (an event type is one)")
	fl.StringVar(&in.Period, "period", "", "one of the configured periods: hourly, daily, ...")
	fl.Float64Var(&in.Threshold, "threshold", 0, "the value that fires the alert, greater than 0")
	fl.StringVar(&in.CustomerID, "customer", "", "the customer watched; every customer when absent")
	return cmd
}

func newAlertsListCommand() *cobra.Command {
	var o clientOptions
	var output, customer string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List usage alerts, oldest first",
		Long: `List usage alerts (GET /alerts, read). A key pinned to a customer sees that
customer's alerts only.`,
		Example: `  odometer alerts list
  odometer alerts list --customer cust_123 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			as, err := c.Alerts(cmd.Context(), customer)
			if err != nil {
				return explain(err)
			}
			p := newPrinter(cmd.OutOrStdout(), output, alertHeader)
			for i := range as {
				p.add(alertRow(&as[i]), &as[i])
			}
			return p.close()
		},
	}
	addClientFlags(cmd, &o)
	addOutputFlag(cmd, &output)
	cmd.Flags().StringVar(&customer, "customer", "", "only the alerts of this customer (not those of every customer)")
	return cmd
}

func newAlertsDeleteCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:     "delete ID",
		Short:   "Delete a usage alert (admin): it sends nothing more",
		Example: `  odometer alerts delete alr_1a2b3c4d5e6f7a8b9c0d1e2f`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if err := c.DeleteAlert(cmd.Context(), args[0]); err != nil {
				return explain(err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Alert %s deleted\n", args[0])
			return nil
		},
	}
	addClientFlags(cmd, &o)
	return cmd
}
