package trail

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Channel-log client calls (docs/GATEWAY.md, "Channel transparency
// logs"). They return what the gateway served without trusting it: check
// checkpoints with ParseCheckpoint and proofs with VerifyInclusion and
// VerifyConsistency.

// maxLogResponse bounds a channel-log response body (a full entry bundle
// of 256 entries of at most MaxLogEntry bytes is the largest).
const maxLogResponse = 256*(MaxLogEntry+2) + 1

func logPath(addr string) string { return "/channels/log/" + url.PathEscape(addr) }

// getRaw GETs path and returns the body of a 2xx answer.
func (c *Client) getRaw(ctx context.Context, path string, q url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.url(path, q), nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if c.jwt != "" {
		req.Header.Set("Authorization", "Bearer "+c.jwt)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxLogResponse))
	if err != nil {
		return nil, fmt.Errorf("GET %s: read response: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return nil, fmt.Errorf("GET %s: %w", path, &APIError{Status: resp.StatusCode, Message: e.Error})
	}
	if len(raw) == maxLogResponse {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", path, maxLogResponse-1)
	}
	return raw, nil
}

// Checkpoint fetches the latest signed checkpoint of channel addr (a
// signed note; the gateway signs a new one when the log has grown).
func (c *Client) Checkpoint(ctx context.Context, addr string) ([]byte, error) {
	return c.getRaw(ctx, logPath(addr)+"/checkpoint", nil)
}

// InclusionProof is the JSON answer of GET …/proof/inclusion.
type InclusionProof struct {
	Index    int64       `json:"index"`
	Size     int64       `json:"size"`
	LeafHash tlog.Hash   `json:"leafHash"`
	Proof    []tlog.Hash `json:"proof"`
}

// ConsistencyProof is the JSON answer of GET …/proof/consistency.
type ConsistencyProof struct {
	From  int64       `json:"from"`
	To    int64       `json:"to"`
	Proof []tlog.Hash `json:"proof"`
}

// InclusionProof fetches the audit path of entry index in the tree of
// size size of channel addr.
func (c *Client) InclusionProof(ctx context.Context, addr string, index, size int64) ([]tlog.Hash, error) {
	q := url.Values{"index": {strconv.FormatInt(index, 10)}, "size": {strconv.FormatInt(size, 10)}}
	var p InclusionProof
	if err := c.do(ctx, "GET", logPath(addr)+"/proof/inclusion", q, nil, &p); err != nil {
		return nil, err
	}
	if p.Index != index || p.Size != size {
		return nil, fmt.Errorf("inclusion proof of %s entry %d at size %d: gateway answered for entry %d at size %d", addr, index, size, p.Index, p.Size)
	}
	return p.Proof, nil
}

// ConsistencyProof fetches the proof that the tree of size to of channel
// addr extends the tree of size from.
func (c *Client) ConsistencyProof(ctx context.Context, addr string, from, to int64) ([]tlog.Hash, error) {
	q := url.Values{"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}
	var p ConsistencyProof
	if err := c.do(ctx, "GET", logPath(addr)+"/proof/consistency", q, nil, &p); err != nil {
		return nil, err
	}
	if p.From != from || p.To != to {
		return nil, fmt.Errorf("consistency proof of %s from %d to %d: gateway answered from %d to %d", addr, from, to, p.From, p.To)
	}
	return p.Proof, nil
}

// LogEntry fetches the verbatim bytes of entry index of channel addr
// (channel read rights apply, as for GET /channels/logs).
func (c *Client) LogEntry(ctx context.Context, addr string, index int64) ([]byte, error) {
	return c.getRaw(ctx, logPath(addr)+"/entry/"+strconv.FormatInt(index, 10), nil)
}

// LogTile fetches a C2SP tlog-tiles resource of channel addr: a hash
// tile path "tile/<L>/<N>[.p/<W>]" or an entry bundle path
// "tile/entries/<N>[.p/<W>]" (bundles need channel read rights).
func (c *Client) LogTile(ctx context.Context, addr, tilePath string) ([]byte, error) {
	if !strings.HasPrefix(tilePath, "tile/") {
		return nil, fmt.Errorf("log tile of %s: path %q does not start with tile/", addr, tilePath)
	}
	return c.getRaw(ctx, logPath(addr)+"/"+tilePath, nil)
}

// TileReader returns a tlog.TileReader over the channel's hash tiles on
// the gateway, for tlog.TileHashReader (which checks every tile against
// a checkpoint's root before using it).
func (c *Client) TileReader(ctx context.Context, addr string) tlog.TileReader {
	return tileReader{ctx: ctx, c: c, addr: addr}
}

type tileReader struct {
	ctx  context.Context
	c    *Client
	addr string
}

func (r tileReader) Height() int { return TileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		p, err := C2SPTilePath(t)
		if err != nil {
			return nil, err
		}
		if out[i], err = r.c.LogTile(r.ctx, r.addr, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// VerifyLog runs the gateway's full integrity check of channel addr
// (channel author or Admin; it reads the whole channel).
func (c *Client) VerifyLog(ctx context.Context, addr string) (LogReport, error) {
	var rep LogReport
	err := c.do(ctx, "GET", logPath(addr)+"/verify", nil, nil, &rep)
	return rep, err
}
