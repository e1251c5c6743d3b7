package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakeproof/lakeproof/index"
)

type lsOptions struct {
	Index  string
	s3     s3Flags
	Format string
	Prefix string
}

func init() {
	register(func() *cobra.Command {
		var o lsOptions
		c := &cobra.Command{
			Use:   "ls --index DIR [PREFIX]",
			Short: "List the entries of an index",
			Long: `List the entries of an index in key order, optionally only those under PREFIX.

Formats:
  b3sum   "<blake3>  <key>" lines that 'b3sum --check' accepts (run it from the dataset root)
  jsonl   one JSON object per line: key, size, mtime, digest, leaf (and etag, checksum when known)
  csv     header key,size,mtime,digest,leaf,etag,checksum`,
			Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if len(args) == 1 {
					o.Prefix = args[0]
				}
				return runLs(cmd.Context(), o, cmd.OutOrStdout())
			},
		}
		c.Flags().StringVarP(&o.Index, "index", "i", "", "index directory")
		o.s3.add(c.Flags())
		c.Flags().StringVar(&o.Format, "format", "b3sum", "output format: b3sum, jsonl or csv")
		c.MarkFlagRequired("index")
		return c
	})
}

func runLs(ctx context.Context, o lsOptions, stdout io.Writer) error {
	var write func(e index.Entry) error
	out := bufio.NewWriterSize(stdout, 1<<16)
	switch o.Format {
	case "b3sum":
		write = func(e index.Entry) error {
			_, err := fmt.Fprintf(out, "%s%s  %s\n", b3sumEscapePrefix(e.Key), e.Digest, b3sumEscape(e.Key))
			return err
		}
	case "jsonl":
		enc := json.NewEncoder(out)
		write = func(e index.Entry) error {
			return enc.Encode(struct {
				Key      string `json:"key"`
				Size     int64  `json:"size"`
				MTime    string `json:"mtime"`
				Digest   string `json:"digest"`
				Leaf     uint64 `json:"leaf"`
				ETag     string `json:"etag,omitempty"`
				Checksum string `json:"checksum,omitempty"`
			}{e.Key, e.Size, e.ModTime.Format(time.RFC3339Nano), e.Digest.String(), e.Leaf, e.ETag, e.Checksum})
		}
	case "csv":
		cw := csv.NewWriter(out)
		defer cw.Flush()
		if err := cw.Write([]string{"key", "size", "mtime", "digest", "leaf", "etag", "checksum"}); err != nil {
			return err
		}
		write = func(e index.Entry) error {
			return cw.Write([]string{e.Key, strconv.FormatInt(e.Size, 10), e.ModTime.Format(time.RFC3339Nano),
				e.Digest.String(), strconv.FormatUint(e.Leaf, 10), e.ETag, e.Checksum})
		}
	default:
		return usageError{fmt.Errorf("--format %q: want b3sum, jsonl or csv", o.Format)}
	}
	ix, err := openIndexAt(ctx, o.Index, o.s3)
	if err != nil {
		return err
	}
	defer ix.Close()
	for e, err := range ix.Entries(ctx, o.Prefix) {
		if err != nil {
			return err
		}
		if err := write(e); err != nil {
			return err
		}
	}
	return out.Flush()
}

// b3sum's checkfile escaping: a path containing '\' or a newline is
// written with those escaped ("\\", "\n") and the line starts with '\'.
// Keys never contain newlines (see lakeproof.CheckKey).
func b3sumEscapePrefix(key string) string {
	if strings.ContainsAny(key, "\\\n") {
		return "\\"
	}
	return ""
}

func b3sumEscape(key string) string {
	if !strings.ContainsAny(key, "\\\n") {
		return key
	}
	return strings.NewReplacer("\\", "\\\\", "\n", "\\n").Replace(key)
}
