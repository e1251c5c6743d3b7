package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/lakeproof/lakeproof/pipeline"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBar draws files, bytes, rate and ETA on one terminal line. The
// totals come from a second, listing-only pass over the source (a scout),
// which is cheap next to hashing; until it finishes the ETA is unknown.
// Without a source (a re-index or a job run, which may be bound by the
// listing: a scout would double it) there is no total: the bar counts
// objects, how many were reused and hashed, and the bytes hashed.
type progressBar struct {
	mu     sync.Mutex // serialises writes to out: the bar and Printf
	out    io.Writer
	p      *pipeline.Progress
	start  time.Time
	totalN atomic.Int64
	totalB atomic.Int64
	known  atomic.Bool
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func startProgress(ctx context.Context, out io.Writer, src pipeline.Source, p *pipeline.Progress) *progressBar {
	ctx, cancel := context.WithCancel(ctx)
	pb := &progressBar{out: out, p: p, start: time.Now(), stop: cancel}
	pb.wg.Add(1)
	if src != nil {
		pb.wg.Add(1)
		go pb.scout(ctx, src)
	}
	go func() {
		defer pb.wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				pb.mu.Lock()
				fmt.Fprint(pb.out, "\r\033[K")
				pb.mu.Unlock()
				return
			case <-t.C:
				pb.draw()
			}
		}
	}()
	return pb
}

// scout lists src for the totals.
func (pb *progressBar) scout(ctx context.Context, src pipeline.Source) {
	defer pb.wg.Done()
	for obj, err := range src.Objects(ctx) {
		if err == nil {
			pb.totalN.Add(1)
			pb.totalB.Add(obj.Size)
		}
	}
	pb.known.Store(ctx.Err() == nil)
}

func (pb *progressBar) draw() {
	files, bytes := pb.p.Files.Load(), pb.p.Bytes.Load()
	el := time.Since(pb.start).Seconds()
	rate := float64(bytes) / max(el, 1e-3)
	line := fmt.Sprintf("%d files  %s  %s/s", files, humanBytes(bytes), humanBytes(int64(rate)))
	if reused := pb.p.Reused.Load(); reused > 0 {
		line = fmt.Sprintf("%d files (%d reused, %d hashed)  %.0f files/s  %s hashed  %s/s",
			files+reused, reused, files, float64(files+reused)/max(el, 1e-3), humanBytes(bytes), humanBytes(int64(rate)))
	}
	if pb.known.Load() {
		tb := pb.totalB.Load()
		pct := 100.0
		if tb > 0 {
			pct = 100 * float64(bytes) / float64(tb)
		}
		eta := "--"
		if rate > 0 && tb >= bytes {
			eta = (time.Duration(float64(tb-bytes)/rate) * time.Second).Round(time.Second).String()
		}
		line = fmt.Sprintf("%d/%d files  %s/%s (%.0f%%)  %s/s  ETA %s", files, pb.totalN.Load(),
			humanBytes(bytes), humanBytes(tb), pct, humanBytes(int64(rate)), eta)
	}
	if e := pb.p.Errors.Load(); e > 0 {
		line += fmt.Sprintf("  %d errors", e)
	}
	pb.mu.Lock()
	defer pb.mu.Unlock()
	fmt.Fprintf(pb.out, "\r\033[K%s", line)
}

// Printf writes a line to the bar's output above the bar: it erases the
// bar first, and the next tick redraws it. It is safe to call while the bar
// is drawn; on a nil bar it just writes to out.
func (pb *progressBar) Printf(out io.Writer, format string, args ...any) {
	if pb == nil {
		fmt.Fprintf(out, format, args...)
		return
	}
	pb.mu.Lock()
	defer pb.mu.Unlock()
	fmt.Fprint(pb.out, "\r\033[K")
	fmt.Fprintf(pb.out, format, args...)
}

// Stop erases the bar and waits for its goroutines.
func (pb *progressBar) Stop() {
	if pb == nil {
		return
	}
	pb.stop()
	pb.wg.Wait()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
