package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/lakeproof/lakeproof/anchor"
	"github.com/lakeproof/lakeproof/trail"
)

type channelWatchOpts struct {
	trustGateway string
	state        string
	once         bool
	interval     time.Duration
}

func newChannelWatchCmd(o *channelOpts) *cobra.Command {
	wo := &channelWatchOpts{}
	c := &cobra.Command{
		Use:   "watch ADDR --gateway URL --trust-gateway VERIFIERKEY [--state FILE] [--once] [--interval D]",
		Short: "Monitor a channel's log: fail loudly on a split view or rewritten history",
		Long: `Poll the channel's newest signed checkpoint, verify its signature (--trust-gateway: the
gateway's note verifier key, as printed by 'lakeproof serve --print-verifier', or a file
holding it) and its origin, and check it is consistent with the last checkpoint verified,
which is kept in --state FILE. The first checkpoint seen is trusted on first use.

Exit status: 1 (and an evidence file next to the state file) as soon as two correctly signed
checkpoints disagree: the same size with another root (split view), a smaller size (the log
shrank) or a consistency proof that fails (rewritten history); 1 also when a checkpoint's
signature or origin is wrong. 2 on usage errors, an unusable state file, or (with --once)
when the gateway cannot be reached; without --once unreachable gateways are logged and
retried. Ctrl-C ends the watch with status 0. No key file is needed: checkpoints and proofs
are public.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runChannelWatch(cmd.Context(), cmd.OutOrStdout(), *o, args[0], *wo)
		},
	}
	f := c.Flags()
	f.StringVar(&wo.trustGateway, "trust-gateway", "", "the gateway's note verifier key (NAME+HASH+KEY) or a file holding it")
	f.StringVar(&wo.state, "state", "", "state file (default $XDG_STATE_HOME/lakeproof/watch/ADDR.json, else ~/.local/state/…)")
	f.BoolVar(&wo.once, "once", false, "check once and exit (for cron jobs)")
	f.DurationVar(&wo.interval, "interval", time.Minute, "time between polls")
	return c
}

// loadTrustedGatewayKey parses the --trust-gateway value: a note verifier
// key, or a file holding one.
func loadTrustedGatewayKey(s string) (note.Verifier, error) {
	if s == "" {
		return nil, usageError{errors.New("--trust-gateway VERIFIERKEY is required (the gateway operator gets it with 'lakeproof serve --print-verifier --data DIR')")}
	}
	k, err := readGatewayKey(s)
	if err != nil {
		return nil, err
	}
	return note.NewVerifier(k)
}

// maxKeyFile bounds a verifier key file (a key is about 100 bytes).
const maxKeyFile = 64 << 10

// readGatewayKey returns the note verifier key s, or the one held in the
// file s names, checked.
func readGatewayKey(s string) (string, error) {
	k := strings.TrimSpace(s)
	_, kerr := note.NewVerifier(k)
	if kerr == nil {
		return k, nil
	}
	if !fileExists(s) {
		return "", usageError{fmt.Errorf("--trust-gateway %q: neither a note verifier key (NAME+HASH+KEY: %v) nor a file", s, kerr)}
	}
	b, err := readLimited(s, maxKeyFile) // not os.ReadFile: s may be /dev/zero or a huge file
	if err != nil {
		return "", usageError{fmt.Errorf("--trust-gateway: %w (a verifier key file holds one line, NAME+HASH+KEY)", err)}
	}
	k = strings.TrimSpace(string(b))
	if _, err := note.NewVerifier(k); err != nil {
		return "", usageError{fmt.Errorf("--trust-gateway file %s: not a note verifier key (NAME+HASH+KEY): %w", s, err)}
	}
	return k, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// defaultWatchState is $XDG_STATE_HOME/lakeproof/watch/ADDR.json, else
// ~/.local/state/lakeproof/watch/ADDR.json.
func defaultWatchState(addr string) (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", usageError{fmt.Errorf("no --state FILE and no home directory: %w", err)}
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "lakeproof", "watch", addr+".json"), nil
}

// watchEvent is one line of `channel watch --json` output.
type watchEvent struct {
	Event    string `json:"event"` // "trusted" (first use), "advanced", "unchanged"
	Channel  string `json:"channel"`
	Gateway  string `json:"gateway"`
	FromSize int64  `json:"fromSize"`
	Size     int64  `json:"size"`
	Root     string `json:"root"`
}

func runChannelWatch(ctx context.Context, w io.Writer, o channelOpts, addr string, wo channelWatchOpts) error {
	if !trail.ValidAddress(addr) {
		return usageError{fmt.Errorf("channel address %q is malformed (want the 105-character address printed by 'channel create')", addr)}
	}
	v, err := loadTrustedGatewayKey(wo.trustGateway)
	if err != nil {
		return err
	}
	gw := trailFirstSet(o.gateway, os.Getenv("LAKEPROOF_GATEWAY"))
	if gw == "" {
		return usageError{errors.New("--gateway URL (or $LAKEPROOF_GATEWAY) is required")}
	}
	if wo.interval < time.Second && !wo.once {
		return usageError{fmt.Errorf("--interval %s: must be at least 1s", wo.interval)}
	}
	if wo.state == "" {
		if wo.state, err = defaultWatchState(addr); err != nil {
			return err
		}
	}
	m := &anchor.Monitor{Client: trail.NewClient(gw), Channel: addr, Verifier: v}
	var have *trail.Checkpoint
	switch cp, _, err := anchor.LoadWatchState(wo.state, addr, v); {
	case err == nil:
		have = &cp
		slog.Info("watch state loaded", "channel", addr, "state", wo.state, "size", cp.Size, "root", cp.Hash.String())
	case errors.Is(err, fs.ErrNotExist):
		slog.Info("no watch state yet: the first checkpoint will be trusted on first use", "state", wo.state)
	default:
		return usageError{err}
	}

	emit := func(ev watchEvent) {
		if o.json {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "%s\n", b)
			return
		}
		switch ev.Event {
		case "trusted":
			fmt.Fprintf(w, "%s trusted on first use: size %d root %s\n", addr, ev.Size, ev.Root)
		case "advanced":
			fmt.Fprintf(w, "%s verified: size %d -> %d root %s\n", addr, ev.FromSize, ev.Size, ev.Root)
		default:
			fmt.Fprintf(w, "%s unchanged: size %d root %s\n", addr, ev.Size, ev.Root)
		}
	}

	// poll checks the newest checkpoint once. Its errors are final
	// (invalidError: inconsistency or bad signature) or transient.
	poll := func() error {
		cp, err := m.Latest(ctx)
		if err != nil {
			if errors.Is(err, trail.ErrCheckpoint) {
				return invalidError{err}
			}
			return err
		}
		ev := watchEvent{Channel: addr, Gateway: gw, Size: cp.Size, Root: cp.Hash.String()}
		if have == nil {
			ev.Event = "trusted"
		} else {
			ev.FromSize = have.Size
			if err := m.Check(ctx, *have, cp); err != nil {
				var inc *anchor.Inconsistency
				if errors.As(err, &inc) {
					msg := fmt.Sprintf("channel %s on %s: %v", addr, gw, err)
					if p, serr := anchor.SaveEvidence(wo.state, addr, inc, time.Now()); serr == nil {
						msg += "; evidence (both signed checkpoints) saved in " + p
					} else {
						msg += "; could not save evidence: " + serr.Error()
					}
					slog.Error("channel log inconsistency", "channel", addr, "gateway", gw, "kind", inc.Kind,
						"storedSize", inc.Older.Size, "storedRoot", inc.Older.Hash.String(), "newSize", inc.Newer.Size, "newRoot", inc.Newer.Hash.String())
					return invalidError{errors.New(msg)}
				}
				if errors.Is(err, trail.ErrCheckpoint) {
					return invalidError{err}
				}
				return err
			}
			ev.Event = "advanced"
			if cp.Size == have.Size {
				ev.Event = "unchanged"
			}
		}
		if ev.Event != "unchanged" {
			if err := anchor.SaveWatchState(wo.state, anchor.NewWatchState(addr, gw, cp, time.Now())); err != nil {
				return usageError{err}
			}
			slog.Info("checkpoint verified", "channel", addr, "gateway", gw, "event", ev.Event, "from", ev.FromSize, "to", cp.Size, "root", ev.Root)
		} else {
			slog.Debug("checkpoint unchanged", "channel", addr, "size", cp.Size)
		}
		have = &cp
		emit(ev)
		return nil
	}

	for {
		err := poll()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil // Ctrl-C ends the watch
		case wo.once:
			return err
		case errors.As(err, new(invalidError)), errors.As(err, new(usageError)):
			return err
		default:
			slog.Warn("channel watch: poll failed; retrying", "channel", addr, "gateway", gw, "err", err, "retry", wo.interval)
		}
		if wo.once {
			return nil
		}
		t := time.NewTimer(wo.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
