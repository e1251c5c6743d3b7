// Command lakeproof proves that a data lake has not been altered: it hashes
// datasets into BLAKE3 Merkle trees with a Parquet index, produces and
// verifies one-file proofs, and serves the audit trail that anchors roots.
//
// Each subcommand lives in its own file, registers itself with register in
// an init function, and does its work in a testable run…(ctx, opts) function.
// Exit codes are documented in docs/OPERATOR.md and in exitcode.go.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// commands holds the constructors of the subcommands, added by register.
var commands []func() *cobra.Command

// register adds a subcommand constructor; call it from an init function.
func register(f func() *cobra.Command) { commands = append(commands, f) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "lakeproof",
		Short:         "Prove that a data lake has not been altered",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("log-level", "warn", "log level on stderr: debug, info, warn or error")
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		s, _ := c.Flags().GetString("log-level")
		var level slog.Level
		if err := level.UnmarshalText([]byte(s)); err != nil {
			return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", s)}
		}
		slog.SetDefault(slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: level})))
		return nil
	}
	for _, f := range commands {
		root.AddCommand(f())
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	return root
}

func main() { os.Exit(run()) }

// run executes the command line in os.Args and returns the exit code. It is
// main without os.Exit, so that tests can run the real command in-process
// (see main_test.go) and deferred calls run before the process exits.
func run() (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "lakeproof: internal error: %v\n%s\nplease report this with the command line you ran\n", r, debug.Stack())
			code = exitInternal
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil && !errors.As(err, new(reported)) {
		fmt.Fprintf(os.Stderr, "lakeproof: %v\n", err)
	}
	return exitCode(err)
}
