package trail_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/lakeproof/lakeproof/trail"
)

// TestOpenAPIMatchesRoutes checks openapi.json lists exactly the routes the
// server registers, under every API prefix, plus the operational ones,
// and that every route is actually served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(trail.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	inDoc := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			inDoc[strings.ToUpper(m)+" "+p] = true
		}
	}
	e := newEnv(t)
	served := map[string]bool{"GET /info": true, "GET /healthz": true, "GET /metrics": true, "GET /openapi.json": true}
	for _, rt := range e.srv.Routes() {
		for _, v := range trail.APIVersions {
			served[rt.Method+" "+v+rt.Path] = true
		}
	}
	var missing, extra []string
	for k := range served {
		if !inDoc[k] {
			missing = append(missing, k)
		}
	}
	for k := range inDoc {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("openapi.json out of date:\n not documented: %v\n documented but not served: %v", missing, extra)
	}
	// Every documented route is routed (not the JSON 404 of unknown paths).
	for k := range inDoc {
		m, p, _ := strings.Cut(k, " ")
		p = strings.NewReplacer("{addr}", strings.Repeat("a", 80)+":"+strings.Repeat("b", 24), "{id}", "did:key:zx", "{trustedRootId}", "did:key:zx").Replace(p)
		_, body := e.raw(m, p, "", nil)
		if strings.Contains(string(body), "no such route") {
			t.Errorf("%s is documented but not routed", k)
		}
	}
	code, body := e.raw("GET", "/openapi.json", "", nil)
	if code != 200 || string(body) != string(trail.OpenAPI) {
		t.Fatalf("/openapi.json: %d", code)
	}
}
