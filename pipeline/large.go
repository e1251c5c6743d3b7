package pipeline

import (
	"context"
	"io"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/pipeline/parhash"
)

// hashLarge hashes the first size bytes of r with up to workers goroutines
// hashing BLAKE3 subtrees in parallel (parhash.Sum). The worker that calls
// it waits; other pool workers go on with other objects, so at most about
// 2×workers goroutines hash at once.
func hashLarge(ctx context.Context, r io.ReaderAt, size int64, workers int) (lakeproof.Hash, error) {
	d, err := parhash.Sum(ctx, r, size, parhash.Options{Workers: workers})
	return lakeproof.Hash(d), err
}
