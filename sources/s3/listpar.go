package s3

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/lakeproof/lakeproof/pipeline"
)

// maxTopQueued bounds the entries of the top-level listing read ahead of the
// one being yielded, so that look-ahead for "directories" to list never
// holds more than about two pages of top-level keys.
const maxTopQueued = 2000

// topItem is one entry of the top-level (delimited) listing: an object
// directly under the dataset prefix, or a "directory" (common prefix)
// whose keys a worker lists.
type topItem struct {
	obj    *types.Object // key already decoded; nil for a directory
	prefix string        // the directory, ending in '/', when obj is nil
	pages  chan listed   // the directory's pages; nil until its worker starts
}

type listed struct {
	out *s3.ListObjectsV2Output
	err error
}

// parallelObjects is Objects with Options.ListConcurrency > 1.
//
// It streams the listing of the dataset prefix with delimiter '/', which
// gives, in order, the objects directly under the prefix and the
// "directories" below it. Each directory is listed (without delimiter) by
// its own goroutine, at most listConc at once, in the order they come; a
// worker hands over its pages through a channel of one, so it holds at most
// two pages. Objects are yielded strictly in order: a directory's keys
// once every entry before it has been yielded, and the next directory's
// only after the previous one's listing has ended. Top-level keys and
// directories interleave in bytewise order, which is the order of the
// delimited listing because a top-level key k (no '/' after the prefix)
// sorts before every key under directory d if and only if k < d. The
// order check of keyChecker still applies to every key yielded, so a
// server that lists out of order is refused as in the sequential listing.
//
// Memory is bounded by listConc × 2 pages for the workers plus about
// maxTopQueued + 1000 top-level entries. On return (the consumer stopped,
// an error, or the end) every worker is cancelled and waited for.
//
// With a range [start, end) (ObjectsRange), the top level is listed from
// start's own top-level directory (or from start itself), directories
// whose keys all sort before start or at or after end are not listed, the
// directory holding start is listed from start, and a worker stops after
// the page that reaches end.
func (s *Source) parallelObjects(ctx context.Context, start, end string) iter.Seq2[pipeline.Object, error] {
	return func(yield func(pipeline.Object, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		topAfter := s.startAfter(start)
		if i := strings.IndexByte(start, '/'); i >= 0 {
			// Start's top-level directory start[:i+1] sorts right after
			// start[:i]; starting after the latter keeps that directory
			// in the delimited listing whatever the server does with a
			// StartAfter inside a common prefix.
			topAfter = s.prefix + start[:i]
		}
		nextTop, stopTop := iter.Pull2(s.pages(ctx, s.prefix, "/", topAfter))
		defer stopTop()

		var (
			queue   []*topItem // entries not yet yielded, in order
			pending []*topItem // directories in queue without a worker, in order
			running int        // directories in queue with a worker
			topDone bool
			c       keyChecker
		)
		startWorkers := func() {
			for running < s.listConc && len(pending) > 0 {
				it := pending[0]
				pending[0] = nil
				pending = pending[1:]
				running++
				it.pages = make(chan listed, 1)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer close(it.pages)
					after := ""
					if start != "" && strings.HasPrefix(s.prefix+start, it.prefix) {
						after = s.startAfter(start)
					}
					for out, err := range s.pages(ctx, it.prefix, "", after) {
						select {
						case it.pages <- listed{out, err}:
						case <-ctx.Done():
							return
						}
						if err == nil && end != "" && pastEnd(out, s.prefix+end) {
							return
						}
					}
				}()
			}
		}
		// readTop appends the next page of the top-level listing to queue.
		readTop := func() error {
			out, err, ok := nextTop()
			if !ok {
				topDone = true
				return nil
			}
			if err != nil {
				topDone = true
				return err
			}
			decode := func(k string) (string, error) {
				if out.EncodingType != types.EncodingTypeUrl {
					return k, nil
				}
				k, err := unescapeKey(k)
				if err != nil {
					return "", fmt.Errorf("list %s: %w", s.uri, err)
				}
				return k, nil
			}
			objs, dirs := out.Contents, out.CommonPrefixes
			for len(objs) > 0 || len(dirs) > 0 {
				var key, dir string
				if len(objs) > 0 {
					if key, err = decode(aws.ToString(objs[0].Key)); err != nil {
						return err
					}
				}
				if len(dirs) > 0 {
					if dir, err = decode(aws.ToString(dirs[0].Prefix)); err != nil {
						return err
					}
				}
				if len(objs) > 0 && (len(dirs) == 0 || key < dir) {
					o := objs[0]
					o.Key = aws.String(key)
					objs = objs[1:]
					if rel := strings.TrimPrefix(key, s.prefix); end != "" && rel >= end {
						topDone = true // past the range: the rest is not wanted
						return nil
					}
					queue = append(queue, &topItem{obj: &o})
					continue
				}
				if !strings.HasPrefix(dir, s.prefix) || len(dir) <= len(s.prefix) || !strings.HasSuffix(dir, "/") {
					return fmt.Errorf("list %s: the server listed common prefix %q, which is not a directory under the prefix %q (buggy S3 server?)", s.uri, dir, s.prefix)
				}
				dirs = dirs[1:]
				rel := dir[len(s.prefix):]
				if end != "" && rel >= end {
					topDone = true
					return nil
				}
				if rel < start && !strings.HasPrefix(start, rel) {
					continue // every key below it is before the range
				}
				it := &topItem{prefix: dir}
				queue = append(queue, it)
				pending = append(pending, it)
			}
			return nil
		}
		emit := func(o *types.Object, enc types.EncodingType, under string) bool {
			obj, objErr, skip, err := c.next(s, o, enc, under)
			if err != nil {
				yield(pipeline.Object{}, err)
				return false
			}
			if skip || obj.Key < start {
				return true
			}
			if end != "" && obj.Key >= end {
				return false
			}
			return yield(obj, objErr)
		}

		for {
			// Read the top level ahead until listConc directories are
			// known (or it ends), within maxTopQueued entries.
			for !topDone && (len(queue) == 0 || running < s.listConc && len(pending) == 0 && len(queue) < maxTopQueued) {
				if err := readTop(); err != nil {
					yield(pipeline.Object{}, err)
					return
				}
				startWorkers()
			}
			if len(queue) == 0 {
				return
			}
			it := queue[0]
			queue[0] = nil
			queue = queue[1:]
			if it.obj != nil {
				if !emit(it.obj, "", s.prefix) {
					return
				}
				continue
			}
			startWorkers() // it is the first directory in queue, so it has a worker now
			for p := range it.pages {
				if p.err != nil {
					yield(pipeline.Object{}, p.err)
					return
				}
				for i := range p.out.Contents {
					if !emit(&p.out.Contents[i], p.out.EncodingType, it.prefix) {
						return
					}
				}
			}
			if ctx.Err() != nil {
				// The worker stopped on cancellation rather than at the
				// end of its listing.
				yield(pipeline.Object{}, fmt.Errorf("list %s: %w", s.uri, ctx.Err()))
				return
			}
			running--
			startWorkers()
		}
	}
}
