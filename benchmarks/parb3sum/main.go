// Command parb3sum prints BLAKE3-256 digests of files in b3sum's format
// ("HEX  PATH"), computed by lakeproof's pipeline/parhash. compare.sh times
// it next to b3sum on the same file, so that the hashing engine can be
// compared end to end (process start, open, read, hash) before and apart from
// `lakeproof index`.
//
//	parb3sum [-workers N] [-stream] FILE...
//
// -workers is parhash.Options.Workers (0: one per core); -stream hashes with
// parhash.SumReader on one goroutine instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/lakeproof/lakeproof/pipeline/parhash"
)

func main() {
	workers := flag.Int("workers", 0, "goroutines per file (0: GOMAXPROCS)")
	subtree := flag.Int("subtree", 0, "bytes per work unit (0: parhash.DefaultSubtreeSize)")
	stream := flag.Bool("stream", false, "hash each file with parhash.SumReader on one goroutine")
	flag.Parse()
	status := 0
	for _, path := range flag.Args() {
		sum, err := hashFile(path, *workers, *subtree, *stream)
		if err != nil {
			fmt.Fprintf(os.Stderr, "parb3sum: %v\n", err)
			status = 1
			continue
		}
		fmt.Printf("%x  %s\n", sum, path)
	}
	os.Exit(status)
}

func hashFile(path string, workers, subtree int, stream bool) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	if stream {
		sum, _, err := parhash.SumReader(f, nil)
		if err != nil {
			return sum, fmt.Errorf("hash %s: %w", path, err)
		}
		return sum, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return [32]byte{}, err
	}
	sum, err := parhash.Sum(context.Background(), f, fi.Size(), parhash.Options{Workers: workers, SubtreeSize: subtree})
	if err != nil {
		return sum, fmt.Errorf("hash %s: %w", path, err)
	}
	return sum, nil
}
