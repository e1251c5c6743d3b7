package jobs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lakeproof/lakeproof/index"
)

func TestParseShard(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		spec, env string
		i, n      int
		bad       bool
	}{
		{spec: "0/1", i: 0, n: 1},
		{spec: "2/3", i: 2, n: 3},
		{spec: "3/3", bad: true},
		{spec: "-1/3", bad: true},
		{spec: "1/0", bad: true},
		{spec: "x/3", bad: true},
		{spec: "/4", env: "3", i: 3, n: 4},
		{spec: "4", env: "1", i: 1, n: 4},
		{spec: "4", bad: true},
		{spec: "/4", env: "4", bad: true},
	} {
		clear(env)
		if tc.env != "" {
			env["JOB_COMPLETION_INDEX"] = tc.env
		}
		i, n, err := ParseShard(tc.spec, getenv)
		if tc.bad {
			if !errors.Is(err, ErrShard) {
				t.Errorf("%q (env %q): err %v, want ErrShard", tc.spec, tc.env, err)
			}
			continue
		}
		if err != nil || i != tc.i || n != tc.n {
			t.Errorf("%q (env %q) = %d/%d, %v; want %d/%d", tc.spec, tc.env, i, n, err, tc.i, tc.n)
		}
	}
	clear(env)
	env["AWS_BATCH_JOB_ARRAY_INDEX"] = "2"
	if i, _, err := ParseShard("/3", getenv); err != nil || i != 2 {
		t.Errorf("AWS Batch index: %d, %v", i, err)
	}
}

// runShards indexes lake as n shards planned by plan and merges them.
func runShards(t *testing.T, lake, dir string, plan Plan, prev string) (*index.Summary, []string) {
	t.Helper()
	var dirs []string
	for i := range plan.Count {
		sh, err := plan.Shard(i)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, fmt.Sprintf("shard-%d-of-%d", i, plan.Count))
		if _, err := Index(context.Background(), openLocal(t, lake), IndexOptions{Out: out, Shard: sh, Workers: 2, Previous: prev}); err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		dirs = append(dirs, out)
	}
	slices.Reverse(dirs) // order of the arguments does not matter
	sum, err := Merge(context.Background(), dirs, filepath.Join(dir, fmt.Sprintf("merged-%d", plan.Count)), "test")
	if err != nil {
		t.Fatal(err)
	}
	return &sum, dirs
}

func TestShardMergeEqualsSingleRun(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 500)
	full := fullIndex(t, lake, filepath.Join(tmp, "full"))
	want := entries(t, filepath.Join(tmp, "full"))
	for _, n := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			plan, err := PlanFromSource(context.Background(), openLocal(t, lake), n)
			if err != nil {
				t.Fatal(err)
			}
			sum, dirs := runShards(t, lake, t.TempDir(), plan, "")
			if sum.Root != full.Root || sum.Files != full.Files || sum.Bytes != full.Bytes || sum.Shard != nil {
				t.Fatalf("merged %+v, single run root %s", sum, full.Root)
			}
			merged := filepath.Join(filepath.Dir(dirs[0]), fmt.Sprintf("merged-%d", n))
			if !slices.Equal(entries(t, merged), want) {
				t.Fatal("merged entries differ from a single run")
			}
			// Balance: no shard holds more than twice its share of bytes+overhead.
			var loads []uint64
			for _, d := range dirs {
				ix, _ := index.Open(context.Background(), d)
				s := ix.Summary()
				ix.Close()
				loads = append(loads, s.Bytes+s.Files*objectWeight)
			}
			total := full.Bytes + full.Files*objectWeight
			for i, l := range loads {
				if l > 2*total/uint64(n)+objectWeight+3000 {
					t.Errorf("shard %d holds %d of %d (n=%d): unbalanced %v", i, l, total, n, loads)
				}
			}
		})
	}
	t.Run("planned from the previous index, incremental", func(t *testing.T) {
		writeFile(t, filepath.Join(lake, "zz-new"), []byte("new"))
		plan, err := PlanFromIndex(context.Background(), filepath.Join(tmp, "full"), 4)
		if err != nil {
			t.Fatal(err)
		}
		sum, _ := runShards(t, lake, t.TempDir(), plan, filepath.Join(tmp, "full"))
		again := fullIndex(t, lake, filepath.Join(tmp, "full2"))
		if sum.Root != again.Root || sum.Previous == nil || sum.Previous.Root != full.Root {
			t.Fatalf("merged %+v, full %s", sum, again.Root)
		}
	})
}

func TestPlanMoreShardsThanKeys(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 3)
	full := fullIndex(t, lake, filepath.Join(tmp, "full"))
	plan, err := PlanFromSource(context.Background(), openLocal(t, lake), 8)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(plan.Splits); i++ {
		if plan.Splits[i] <= plan.Splits[i-1] {
			t.Fatalf("splits not increasing: %q", plan.Splits)
		}
	}
	sum, _ := runShards(t, lake, t.TempDir(), plan, "")
	if sum.Root != full.Root {
		t.Fatal("root differs")
	}
}

func TestMergeRefuses(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 60)
	plan, err := PlanFromSource(context.Background(), openLocal(t, lake), 3)
	if err != nil {
		t.Fatal(err)
	}
	_, dirs := runShards(t, lake, tmp, plan, "")
	slices.Reverse(dirs) // shard 0, 1, 2
	other := Plan{Count: 3, Splits: []string{"d02", "d04"}}
	sh, _ := other.Shard(1)
	otherDir := filepath.Join(tmp, "other-plan-1")
	if _, err := Index(context.Background(), openLocal(t, lake), IndexOptions{Out: otherDir, Shard: sh}); err != nil {
		t.Fatal(err)
	}
	fullIndex(t, lake, filepath.Join(tmp, "full"))
	for _, tc := range []struct {
		name string
		dirs []string
		want string
	}{
		{"missing", []string{dirs[0], dirs[2]}, "missing shard(s) 1 of 3"},
		{"duplicated", []string{dirs[0], dirs[1], dirs[1], dirs[2]}, "shard 1/3 given twice"},
		{"other plan", []string{dirs[0], otherDir, dirs[2]}, "planned differently"},
		{"not a shard", []string{dirs[0], filepath.Join(tmp, "full")}, "is not a shard index"},
		{"none", nil, "no shard given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(tmp, "out-"+tc.name)
			_, err := Merge(context.Background(), tc.dirs, out, "test")
			if !errors.Is(err, ErrShard) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrShard with %q", err, tc.want)
			}
			if index.Exists(out) {
				t.Fatal("a refused merge published an index")
			}
		})
	}
	t.Run("shard index out of range", func(t *testing.T) {
		if _, err := plan.Shard(3); !errors.Is(err, ErrShard) {
			t.Fatalf("err %v", err)
		}
		_, err := Index(context.Background(), openLocal(t, lake), IndexOptions{Out: filepath.Join(tmp, "bad"), Shard: &index.Shard{Index: 5, Count: 3}})
		if err == nil {
			t.Fatal("shard 5 of 3 accepted")
		}
	})
}
