package s3

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/lakeproof/lakeproof/pipeline"
)

// ObjectsRange is Objects restricted to the dataset keys k with start ≤ k
// and, when end is not "", k < end, in the same order and with the same
// per-object errors. It lists the range only: ListObjectsV2 starts just
// before start (StartAfter), and the listing stops at the page that reaches
// end. With parallel listing (Options.ListConcurrency > 1), the delimited
// top-level listing also starts at start's top-level directory, and only
// the directories that overlap the range are listed. Shards of a run use it
// so that N shards together list the dataset about once.
func (s *Source) ObjectsRange(ctx context.Context, start, end string) iter.Seq2[pipeline.Object, error] {
	return s.objects(ctx, start, end)
}

// Children lists the entries directly under the dataset "directory" dir (a
// key ending in '/', or "" for the dataset prefix) with one delimited
// listing, in key order: objects with their size, modification time and
// ETag, and the common prefixes below dir as keys ending in '/' (size 0).
// Folder markers are left out. It is used to plan shards without listing
// the whole dataset.
func (s *Source) Children(ctx context.Context, dir string) iter.Seq2[pipeline.Object, error] {
	return func(yield func(pipeline.Object, error) bool) {
		if dir != "" && !strings.HasSuffix(dir, "/") {
			yield(pipeline.Object{}, fmt.Errorf("list %s: %q is not a directory key", s.uri, dir))
			return
		}
		under := s.prefix + dir
		for out, err := range s.pages(ctx, under, "/", "") {
			if err != nil {
				yield(pipeline.Object{}, err)
				return
			}
			decode := func(k string) (string, error) {
				if out.EncodingType != types.EncodingTypeUrl {
					return k, nil
				}
				return unescapeKey(k)
			}
			objs, dirs := out.Contents, out.CommonPrefixes
			for len(objs) > 0 || len(dirs) > 0 {
				var key, sub string
				var err error
				if len(objs) > 0 {
					if key, err = decode(aws.ToString(objs[0].Key)); err != nil {
						yield(pipeline.Object{}, fmt.Errorf("list %s: %w", s.uri, err))
						return
					}
				}
				if len(dirs) > 0 {
					if sub, err = decode(aws.ToString(dirs[0].Prefix)); err != nil {
						yield(pipeline.Object{}, fmt.Errorf("list %s: %w", s.uri, err))
						return
					}
				}
				var o pipeline.Object
				if len(objs) > 0 && (len(dirs) == 0 || key < sub) {
					size := aws.ToInt64(objs[0].Size)
					o = pipeline.Object{Key: key, Size: size, ModTime: aws.ToTime(objs[0].LastModified), ETag: unquoteETag(aws.ToString(objs[0].ETag))}
					objs = objs[1:]
					if size == 0 && (key == under || strings.HasSuffix(key, "/")) {
						continue // folder marker
					}
				} else {
					o = pipeline.Object{Key: sub}
					dirs = dirs[1:]
				}
				if !strings.HasPrefix(o.Key, under) || o.Key == under {
					yield(pipeline.Object{}, fmt.Errorf("list %s: the server listed %q, which is not under %q (buggy S3 server?)", s.uri, o.Key, under))
					return
				}
				o.Key = o.Key[len(s.prefix):]
				if !yield(o, nil) {
					return
				}
			}
		}
	}
}

// startAfter is the ListObjectsV2 StartAfter that lists the dataset keys
// from start on: a full key just below s.prefix+start, or "" for start "".
func (s *Source) startAfter(start string) string {
	if start == "" {
		return ""
	}
	return s.prefix + keyBefore(start)
}

// keyBefore returns a string that sorts (bytewise) before k and after
// nearly every key that sorts before k, so that a listing that starts after
// it lists next to nothing before k: k with its last character decremented
// and U+10FFFF, the greatest character, appended. It stays valid UTF-8, as
// S3 requires of StartAfter; for a k that does not end in a valid character
// above U+0000 it is k without its last byte (still before k, but a listing
// from it may list a few keys more, which callers filter out).
func keyBefore(k string) string {
	r, size := utf8.DecodeLastRuneInString(k)
	if (r == utf8.RuneError && size <= 1) || r == 0 {
		return k[:len(k)-1]
	}
	p := r - 1
	if p >= 0xD800 && p <= 0xDFFF { // surrogates are not characters
		p = 0xD7FF
	}
	return k[:len(k)-size] + string(p) + string(utf8.MaxRune)
}

// pastEnd reports whether the last key of page out is at or after end (a
// full key): no later page can hold keys before end.
func pastEnd(out *s3.ListObjectsV2Output, end string) bool {
	if len(out.Contents) == 0 {
		return false
	}
	k := aws.ToString(out.Contents[len(out.Contents)-1].Key)
	if out.EncodingType == types.EncodingTypeUrl {
		var err error
		if k, err = unescapeKey(k); err != nil {
			return false
		}
	}
	return k >= end
}
