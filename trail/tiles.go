package trail

import (
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// C2SPTilePath returns the c2sp.org/tlog-tiles path of t (a tile of
// height TileHeight): "tile/<L>/<N>[.p/<W>]" for hash tiles and
// "tile/entries/<N>[.p/<W>]" for entry bundles (t.L == -1), with N in the
// x001/x234/067 encoding. It is tlog's Tile.Path without the height.
func C2SPTilePath(t tlog.Tile) (string, error) {
	if t.H != TileHeight || t.L < -1 || t.N < 0 || t.W < 1 || t.W > 1<<TileHeight {
		return "", fmt.Errorf("tile %+v is not a height-%d tile", t, TileHeight)
	}
	p := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", TileHeight))
	if t.L == -1 {
		p = "entries/" + strings.TrimPrefix(p, "data/")
	}
	return "tile/" + p, nil
}

// ParseC2SPTilePath parses a c2sp.org/tlog-tiles path (the inverse of
// C2SPTilePath); only the canonical encoding is accepted. Entry bundles
// have L == -1.
func ParseC2SPTilePath(p string) (tlog.Tile, error) {
	rest, ok := strings.CutPrefix(p, "tile/")
	if !ok {
		return tlog.Tile{}, fmt.Errorf("tile path %q: does not start with tile/", p)
	}
	if r, ok := strings.CutPrefix(rest, "entries/"); ok {
		rest = "data/" + r
	} else if strings.HasPrefix(rest, "data/") {
		return tlog.Tile{}, fmt.Errorf("tile path %q: entry bundles are tile/entries/…", p)
	}
	t, err := tlog.ParseTilePath(fmt.Sprintf("tile/%d/%s", TileHeight, rest))
	if err != nil {
		return tlog.Tile{}, fmt.Errorf("tile path %q: malformed (want tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>], N as x001/x234/067)", p)
	}
	if t.L > 63/TileHeight {
		return tlog.Tile{}, fmt.Errorf("tile path %q: level %d too high", p, t.L)
	}
	return t, nil
}
