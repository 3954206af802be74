// Command odometer is the Odometer usage-metering service and its tools.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "odometer:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "odometer",
		Short:         "Usage metering: ingest events, aggregate them per calendar period, send signed webhooks",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newVersionCommand())
	root.AddCommand(newKeysCommand(), newCustomersCommand(), newEventsCommand(), newAggregationsCommand(), newTriggerCommand(),
		newDeliveriesCommand(), newSendCommand(), newExportCommand(), newBenchCommand(), newConfigCommand(),
		newWebhooksCommand(), newAlertsCommand())
	return root
}

// envOr returns the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// envBool reports whether the environment variable name is "1" or "true".
func envBool(name string) bool {
	v := os.Getenv(name)
	return v == "1" || strings.EqualFold(v, "true")
}
