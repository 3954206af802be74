package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/odometer-dev/odometer"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "config",
		Short:   "Check a configuration file",
		Example: `  odometer config check systemconfig.json`,
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(newConfigCheckCommand())
	return cmd
}

func newConfigCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration file as the server does at start",
		Long: `Validate a configuration file (systemconfig.json) exactly as serve does at
start: print "ok" and exit 0, or print what is wrong (the file, the key and what
is allowed) and exit 1. A summary of the configuration goes to standard error.`,
		Example: `  odometer config check systemconfig.json
  odometer config check /etc/odometer/systemconfig.json && systemctl restart odometer`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := odometer.LoadConfig(args[0])
			if err != nil {
				return err
			}
			periods := make([]string, len(cfg.Periods))
			for i, p := range cfg.Periods {
				periods[i] = string(p)
			}
			var types []string
			for _, name := range cfg.EventOrder {
				types = append(types, name+" ("+string(cfg.Events[name].Op)+")")
			}
			enabled := 0
			for _, w := range cfg.Webhooks {
				if w.Enabled {
					enabled++
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "periods: %s\nevent types: %s\n", strings.Join(periods, ", "), strings.Join(types, ", "))
			if len(cfg.MeterOrder) > 0 {
				var meters []string
				for _, name := range cfg.MeterOrder {
					m := cfg.Meters[name]
					d := name + " (" + string(m.Op) + " of " + m.EventType
					if m.Value != "" {
						d += " " + m.Value
					}
					if len(m.GroupBy) > 0 {
						d += " by " + strings.Join(m.GroupBy, ", ")
					}
					meters = append(meters, d+")")
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "meters: %s\n", strings.Join(meters, ", "))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "webhooks: %d (%d enabled)\ntimezone: %s\n", len(cfg.Webhooks), enabled, cfg.Timezone)
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
}
