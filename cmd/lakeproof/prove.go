package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/lakeproof/lakeproof/index"
)

type proveOptions struct {
	Index string
	s3    s3Flags
	Key   string
}

func init() {
	register(func() *cobra.Command {
		var o proveOptions
		c := &cobra.Command{
			Use:   "prove --index DIR KEY",
			Short: "Print the proof bundle of one file (JSON) on stdout",
			Long: `Print a self-contained JSON proof that the file KEY (its path relative to the
dataset root) is part of the indexed dataset. The proof is checked against the
index's root before it is printed. Exit 1 if KEY is not in the dataset.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Key = args[0]
				return runProve(cmd.Context(), o, cmd.OutOrStdout())
			},
		}
		c.Flags().StringVarP(&o.Index, "index", "i", "", "index directory")
		o.s3.add(c.Flags())
		c.MarkFlagRequired("index")
		return c
	})
}

func runProve(ctx context.Context, o proveOptions, stdout io.Writer) error {
	ix, err := openIndexAt(ctx, o.Index, o.s3)
	if err != nil {
		return err
	}
	defer ix.Close()
	b, err := ix.Prove(ctx, o.Key)
	if errors.Is(err, index.ErrKeyNotFound) {
		return invalidError{fmt.Errorf("%w (keys are paths relative to the dataset root %s, '/'-separated; see 'lakeproof ls')", err, ix.Summary().Source)}
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(b.Marshal())
	return err
}
