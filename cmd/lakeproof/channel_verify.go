package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/spf13/cobra"
)

func newChannelVerifyCmd(o *channelOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "verify ADDR --key FILE",
		Short: "Run the gateway's integrity check of a channel log (channel author or Admin)",
		Long: `Ask the gateway to re-read the whole channel and check it (GET
/channels/log/ADDR/verify): indexes without gaps, canonical entries signed by their writer
(or the gateway), entries matching the channel's transparency log at their index, stored
tree hashes matching the entries, and the entries still hashing to the latest signed
checkpoint. It reads the whole channel, so it takes time on large channels.

Exit status: 0 when the log is intact, 1 when a problem was found (each is printed),
2 on usage errors or when the gateway cannot answer (e.g. not the author: 403).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runChannelVerify(cmd.Context(), cmd.OutOrStdout(), *o, args[0])
		},
	}
}

func runChannelVerify(ctx context.Context, w io.Writer, o channelOpts, addr string) error {
	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	rep, err := c.VerifyLog(ctx, addr)
	if err != nil {
		return fmt.Errorf("verify channel %s: %w", addr, err)
	}
	if o.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintf(w, "%s\n", b)
	} else {
		cp := "no signed checkpoint"
		if rep.CheckpointSize >= 0 {
			cp = fmt.Sprintf("signed checkpoint at size %d", rep.CheckpointSize)
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "PROBLEM %s\n", p)
		}
		status := "intact"
		if !rep.Valid {
			status = "NOT intact"
		}
		fmt.Fprintf(w, "channel %s: %d entries, %s: %s\n", addr, rep.Size, cp, status)
	}
	if !rep.Valid {
		return reported{invalidError{fmt.Errorf("channel %s: %d problems: %w", addr, len(rep.Problems), trail.ErrInconsistent)}}
	}
	return nil
}
