// Command s3get is the raw-GET ceiling of benchmarks/s3_compare.sh: it lists
// an S3 prefix and reads every object with plain parallel GETs, discarding
// the bytes (no hashing, no checks). It also creates a bucket and uploads a
// local tree, to load the benchmark data.
//
//	s3get mb BUCKET
//	s3get put [-j N] DIR s3://BUCKET/PREFIX
//	s3get get [-j N] s3://BUCKET/PREFIX
//
// It uses the SDK's default configuration (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
// AWS_REGION, …) with path-style addressing. get prints the object count,
// bytes and seconds.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: s3get mb BUCKET | put [-j N] DIR s3://B/P | get [-j N] s3://B/P")
		os.Exit(2)
	}
	fset := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	jobs := fset.Int("j", 32, "concurrent requests")
	fset.Parse(os.Args[2:])
	ctx := context.Background()
	// Keep a connection per worker alive (the SDK's default pool keeps few
	// idle connections per host), and skip response checksum validation, so
	// that this is the plain ceiling of the server.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 2 * *jobs
		t.MaxIdleConnsPerHost = 2 * *jobs
	})
	cfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(httpClient),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	if err != nil {
		fail(err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	args := fset.Args()
	switch {
	case os.Args[1] == "mb" && len(args) == 1:
		_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(args[0])})
	case os.Args[1] == "put" && len(args) == 2:
		err = put(ctx, c, *jobs, args[0], args[1])
	case os.Args[1] == "get" && len(args) == 1:
		err = get(ctx, c, *jobs, args[0])
	default:
		fmt.Fprintln(os.Stderr, "s3get: bad arguments")
		os.Exit(2)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "s3get:", err)
	os.Exit(1)
}

func split(uri string) (bucket, prefix string) {
	b, p, _ := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return b, p
}

// run calls f for every item of feed with n goroutines and returns the
// first error.
func run(n int, feed func(chan<- string), f func(string) error) error {
	ch := make(chan string)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range ch {
				if err := f(k); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	feed(ch)
	close(ch)
	wg.Wait()
	return first
}

func put(ctx context.Context, c *s3.Client, n int, dir, uri string) error {
	bucket, prefix := split(uri)
	var walkErr error
	err := run(n, func(ch chan<- string) {
		walkErr = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				ch <- p
			}
			return err
		})
	}, func(p string) error {
		rel, _ := filepath.Rel(dir, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + filepath.ToSlash(rel)), Body: f})
		return err
	})
	if walkErr != nil {
		return walkErr
	}
	return err
}

func get(ctx context.Context, c *s3.Client, n int, uri string) error {
	bucket, prefix := split(uri)
	start := time.Now()
	var objs, bytes atomic.Int64
	var listErr error
	err := run(n, func(ch chan<- string) {
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				listErr = err
				return
			}
			for _, o := range out.Contents {
				ch <- aws.ToString(o.Key)
			}
		}
	}, func(key string) error {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		m, err := io.Copy(io.Discard, out.Body)
		objs.Add(1)
		bytes.Add(m)
		return err
	})
	if listErr != nil {
		return listErr
	}
	if err != nil {
		return err
	}
	fmt.Printf("%d objects, %d bytes, %.2f s\n", objs.Load(), bytes.Load(), time.Since(start).Seconds())
	return nil
}
