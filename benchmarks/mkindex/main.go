// Command mkindex writes a synthetic index of N entries (keys
// "k/%010d", digests BLAKE3(key)) for proof benchmarks, without hashing
// any files: `go run ./benchmarks/mkindex -n 1000000 -out /tmp/big.idx`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
)

func main() {
	n := flag.Int("n", 1_000_000, "number of entries")
	out := flag.String("out", "", "index directory to create")
	flag.Parse()
	if *out == "" {
		log.Fatal("-out is required")
	}
	w, err := index.Create(*out, index.Meta{Source: "synthetic://mkindex", Tool: "mkindex"})
	if err != nil {
		log.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	for i := range *n {
		key := fmt.Sprintf("k/%010d", i)
		err := w.Add(index.Entry{Key: key, Size: int64(i), ModTime: t0, Digest: lakeproof.Hash(blake3.Sum256([]byte(key)))})
		if err != nil {
			log.Fatal(err)
		}
	}
	s, err := w.Commit(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %d entries root %s\n", *out, s.Files, s.Root)
}
