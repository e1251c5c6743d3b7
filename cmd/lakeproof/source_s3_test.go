package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/internal/s3test"
)

// TestIndexS3EqualsLocal indexes the same tree from a local folder and from
// a real S3 server (versitygw): the roots must be equal.
func TestIndexS3EqualsLocal(t *testing.T) {
	srv := s3Env(t, true)

	rng := rand.New(rand.NewPCG(3, 4))
	blob := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	files := map[string][]byte{
		"a.txt":               []byte("alpha\n"),
		"dir/b c.txt":         []byte("with a space"),
		"dir/ünïcödé/日本.txt":  []byte("unicode"),
		"plus+sign":           []byte("plus"),
		"pct%20literal":       []byte("percent"),
		"zero":                {},
		"deep/x/y/z/w.bin":    blob(70_000),
		"part-00000.parquet":  blob(1 << 20),
		"dir/sub/e\u0301te":   []byte("nfd"),
		"~tilde and 'quote'!": []byte("q"),
	}
	local := t.TempDir()
	for k, v := range files {
		p := filepath.Join(local, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bucket := srv.NewBucket(t)
	for k, v := range files {
		srv.Put(t, bucket, "lake/"+k, v)
	}
	// A large multipart object (ETag -N), written locally too.
	big := blob(20<<20 + 17)
	srv.PutMultipart(t, bucket, "lake/big/multipart.bin", big, 6<<20)
	os.MkdirAll(filepath.Join(local, "big"), 0o755)
	os.WriteFile(filepath.Join(local, "big", "multipart.bin"), big, 0o644)
	// Outside the dataset.
	srv.Put(t, bucket, "lake.txt", []byte("not in the dataset"))
	srv.Put(t, bucket, "lakeside/x", []byte("not in the dataset"))

	ctx := context.Background()
	out := t.TempDir()
	indexAt := func(src, name string) indexResult {
		t.Helper()
		res, err := runIndex(ctx, indexOptions{Source: src, Out: filepath.Join(out, name), Workers: 4, Quiet: true}, io.Discard, io.Discard)
		if err != nil {
			t.Fatalf("index %s: %v", src, err)
		}
		return res
	}
	want := indexAt(local, "local")
	for i, uri := range []string{"s3://" + bucket + "/lake", "s3://" + bucket + "/lake/"} {
		got := indexAt(uri, fmt.Sprintf("s3-%d", i))
		if got.Root != want.Root || got.Files != want.Files || got.Bytes != want.Bytes {
			t.Errorf("%s: root %s, %d files, %d bytes; local copy: root %s, %d files, %d bytes",
				uri, got.Root, got.Files, got.Bytes, want.Root, want.Files, want.Bytes)
		}
	}

	// A changed byte changes the root.
	changed := bytes.Clone(files["a.txt"])
	changed[0] ^= 1
	srv.Put(t, bucket, "lake/a.txt", changed)
	if got := indexAt("s3://"+bucket+"/lake", "s3-changed"); got.Root == want.Root {
		t.Errorf("root unchanged after an object changed")
	}

	// The index to and from S3: published under a prefix, then read back
	// with ranged GETs, never published twice.
	ixURI := "s3://" + bucket + "/_lakeproof/lake/v1"
	pub, err := openIndexOut(ctx, ixURI, s3Flags{}) // checks that nothing is there
	if err != nil {
		t.Fatalf("--out before publishing: %v", err)
	}
	pub.Local = filepath.Join(out, "s3-0") // an index built earlier
	if err := pub.publish(ctx); err != nil {
		t.Fatalf("publish: %v", err)
	}
	pub.close()
	if _, err := openIndexOut(ctx, ixURI, s3Flags{}); !errors.Is(err, index.ErrExists) {
		t.Errorf("--out after publishing: %v; want index.ErrExists", err)
	}
	ix, err := openIndexAt(ctx, ixURI, s3Flags{})
	if err != nil {
		t.Fatalf("open index from S3: %v", err)
	}
	defer ix.Close()
	if ix.Summary().Root != want.Root {
		t.Errorf("index on S3 has root %s, want %s", ix.Summary().Root, want.Root)
	}
	b, err := ix.Prove(ctx, "dir/b c.txt")
	if err != nil {
		t.Fatalf("prove from the index on S3: %v", err)
	}
	if b.Root != want.Root {
		t.Errorf("proof from S3 for root %s, want %s", b.Root, want.Root)
	}

	// The CLI path: index --out s3://…, then prove and ls with --index s3://….
	cliOut := "s3://" + bucket + "/_lakeproof/lake/v2"
	res, err := runIndex(ctx, indexOptions{Source: "s3://" + bucket + "/lake", Out: cliOut, Quiet: true}, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("index --out %s: %v", cliOut, err)
	}
	if res.Index != cliOut {
		t.Errorf("result names index %q, want %q", res.Index, cliOut)
	}
	var proof bytes.Buffer
	if err := runProve(ctx, proveOptions{Index: cliOut, Key: "deep/x/y/z/w.bin"}, &proof); err != nil {
		t.Fatalf("prove --index %s: %v", cliOut, err)
	}
	if !strings.Contains(proof.String(), `"key": "deep/x/y/z/w.bin"`) {
		t.Errorf("proof from the S3 index: %s", proof.String())
	}
	var listing bytes.Buffer
	if err := runLs(ctx, lsOptions{Index: cliOut, Format: "jsonl"}, &listing); err != nil {
		t.Fatalf("ls --index %s: %v", cliOut, err)
	}
	if n := strings.Count(listing.String(), "\n"); n != len(files)+1 {
		t.Errorf("ls listed %d entries, want %d", n, len(files)+1)
	}
	if !strings.Contains(listing.String(), `"checksum":"CRC64NVME:`) || !strings.Contains(listing.String(), `"etag":`) {
		t.Errorf("provider ETag and checksum not recorded: %.300s", listing.String())
	}
	_, err = runIndex(ctx, indexOptions{Source: "s3://" + bucket + "/lake", Out: cliOut, Quiet: true}, io.Discard, io.Discard)
	if exitCode(err) != exitUsage || !errors.Is(err, index.ErrExists) {
		t.Errorf("second index to the same S3 location: %v (exit %d), want ErrExists and exit 2", err, exitCode(err))
	}

	// Errors up front: a missing bucket is one usage error, before any work.
	_, err = runIndex(ctx, indexOptions{Source: "s3://no-such-bucket-x/p", Out: filepath.Join(out, "missing"), Quiet: true}, io.Discard, io.Discard)
	if err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing bucket: %v (exit %d)", err, exitCode(err))
	}
	if _, serr := os.Stat(filepath.Join(out, "missing")); !os.IsNotExist(serr) {
		t.Errorf("an index was written for a missing bucket")
	}
}

// s3Env starts a real S3 server (versitygw) and points the AWS SDK's
// environment at it: its credentials and region, no profile or config
// file, and its endpoint in AWS_ENDPOINT_URL when endpointEnv (else none:
// the test passes --s3-endpoint).
func s3Env(t *testing.T, endpointEnv bool) *s3test.Server {
	t.Helper()
	srv := s3test.New(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", srv.Region)
	unset := []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"}
	if endpointEnv {
		t.Setenv("AWS_ENDPOINT_URL", srv.Endpoint)
	} else {
		unset = append(unset, "AWS_ENDPOINT_URL")
	}
	for _, v := range unset {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	return srv
}

// Sharding and merging through the CLI with S3 locations: shards written
// to s3:// by 'index --shard', merged from S3 into an s3:// index with the
// root of a single local run, then an incremental run from that S3 index;
// an --out that holds an index is refused before any work, and a missing
// shard is named.
func TestShardMergeS3CLI(t *testing.T) {
	srv := s3Env(t, true)
	bucket := srv.NewBucket(t)
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	for i := range 30 {
		p := filepath.Join(lake, fmt.Sprintf("d%d/f%02d", i%4, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, 100+i*37), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var full, merged, next indexResult
	jsonOf := func(out string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), v); err != nil {
			t.Fatalf("%v in %q", err, out)
		}
	}
	jsonOf(mustLP(t, "index", lake, "--out", filepath.Join(dir, "full"), "--json"), &full)
	base := "s3://" + bucket + "/idx"
	var shards []string
	for i := range 3 {
		sh := fmt.Sprintf("%s/shards/r1/shard-%d", base, i)
		mustLP(t, "index", lake, "--shard", fmt.Sprintf("%d/3", i), "--out", sh, "--json")
		shards = append(shards, sh)
	}
	jsonOf(mustLP(t, append([]string{"merge", "--out", base + "/v1", "--json"}, shards...)...), &merged)
	if merged.Root != full.Root || merged.Files != 30 || merged.Index != base+"/v1" {
		t.Fatalf("merged from S3: %+v, full %+v", merged, full)
	}
	mustLP(t, "verify", "--index", base+"/v1", lake)
	var inc struct {
		Index    string `json:"index"`
		Root     string `json:"root"`
		Reused   uint64 `json:"reused"`
		Rehashed uint64 `json:"rehashed"`
	}
	jsonOf(mustLP(t, "index", lake, "--previous", base+"/v1", "--out", base+"/v2", "--json"), &inc)
	if inc.Root != full.Root.String() || inc.Reused != 30 || inc.Rehashed != 0 || inc.Index != base+"/v2" {
		t.Fatalf("incremental from S3: %+v", inc)
	}
	jsonOf(mustLP(t, "index", lake, "--previous", base+"/v2", "--shard", "1/2", "--out", base+"/shards/r2/s1", "--json"), &next)
	if next.Files == 0 || next.Files >= 30 {
		t.Fatalf("shard planned from the S3 index: %+v", next)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"index", lake, "--shard", "0/3", "--out", shards[0]}, exitUsage, "already exists"},
		{[]string{"index", lake, "--previous", base + "/v1", "--out", base + "/v1"}, exitUsage, "already exists"},
		{[]string{"merge", shards[0], base + "/shards/r1/nope", "--out", base + "/v3"}, exitUsage, base + "/shards/r1/nope"},
		{[]string{"merge", shards[0], shards[1], "--out", base + "/v3"}, exitUsage, "shard"},
		{[]string{"index", lake, "--previous", base + "/none", "--out", base + "/v3"}, exitUsage, base + "/none"},
	} {
		out, code := lp(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("lakeproof %s: exit %d, want %d and %q:\n%s", strings.Join(tc.args, " "), code, tc.code, tc.want, out)
		}
	}
	if _, err := srv.Client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("idx/v3/summary.json")}); err == nil {
		t.Error("a refused run published idx/v3")
	}
}
