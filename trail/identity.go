package trail

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// jsTime formats t like JavaScript's Date.toISOString.
func jsTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// pathDID returns the {id} path value as a did:key, 400 when malformed.
func pathDID(r *http.Request, name string) (string, error) {
	did := r.PathValue(name)
	if _, err := ParseDID(did); err != nil {
		return "", errf(http.StatusBadRequest, "%v", err)
	}
	return did, nil
}

// ---- authentication ----

func (s *Server) getNonce(w http.ResponseWriter, r *http.Request, _ *caller) error {
	did, err := pathDID(r, "id")
	if err != nil {
		return err
	}
	if _, err := s.cfg.Store.GetIdentity(r.Context(), did); err != nil {
		return err
	}
	nonce := randomHex(20)
	if err := s.cfg.Store.PutNonce(r.Context(), did, nonce, s.cfg.Now().Add(s.cfg.NonceTTL)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"nonce": nonce})
	return nil
}

// NonceDigest is what a prove-ownership signature covers: SHA-256 of the
// nonce's 40 ASCII hex characters.
func NonceDigest(nonce string) []byte {
	d := sha256.Sum256([]byte(nonce))
	return d[:]
}

func (s *Server) proveOwnership(w http.ResponseWriter, r *http.Request, _ *caller) error {
	did, err := pathDID(r, "id")
	if err != nil {
		return err
	}
	var body struct {
		SignedNonce string `json:"signedNonce"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	sig, err := ParseSignature(body.SignedNonce)
	if err != nil {
		return errf(http.StatusBadRequest, "no valid signedNonce provided: %v", err)
	}
	id, err := s.cfg.Store.GetIdentity(r.Context(), did)
	if err != nil {
		return err
	}
	pub, _ := ParseDID(did)
	now := s.cfg.Now()
	nonces, err := s.cfg.Store.Nonces(r.Context(), did, now)
	if err != nil {
		return err
	}
	for _, n := range nonces {
		if !ed25519.Verify(pub, NonceDigest(n), sig) {
			continue
		}
		if err := s.cfg.Store.TakeNonce(r.Context(), did, n, now); errors.Is(err, ErrNotFound) {
			return errf(http.StatusUnauthorized, "could not prove the ownership: nonce already used")
		} else if err != nil {
			return err
		}
		jwt, err := SignJWT(s.cfg.JWTSecret, TokenUser{ID: id.ID, Role: id.Role, Username: id.Username}, now, s.cfg.JWTTTL)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"jwt": jwt})
		return nil
	}
	return errf(http.StatusUnauthorized, "could not prove the ownership")
}

func (s *Server) verifyJWT(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var body struct {
		JWT string `json:"jwt"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.JWT == "" {
		return errf(http.StatusBadRequest, "no jwt provided")
	}
	if _, err := ParseJWT(s.cfg.JWTSecret, body.JWT, s.cfg.Now()); err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"isValid": false, "error": err.Error()})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"isValid": true})
	return nil
}

// ---- identities ----

type identityBody struct {
	ID       string          `json:"id"`
	Username string          `json:"username"`
	Claim    json.RawMessage `json:"claim"`
	Hidden   bool            `json:"hidden"`
	Role     Role            `json:"role"`
}

func (b *identityBody) validate(needID bool) (claimType string, err error) {
	if n := len(b.Username); n < 3 || n > 64 {
		return "", errf(http.StatusBadRequest, "username must have 3 to 64 characters")
	}
	if needID {
		if _, err := ParseDID(b.ID); err != nil {
			return "", errf(http.StatusBadRequest, "%v", err)
		}
	}
	switch b.Role {
	case "", RoleUser, RoleManager, RoleAdmin:
	default:
		return "", errf(http.StatusBadRequest, "unknown role %q", b.Role)
	}
	if t := strings.TrimSpace(string(b.Claim)); t == "" || t == "null" {
		b.Claim = nil
		return "", nil
	}
	var c struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b.Claim, &c); err != nil {
		return "", errf(http.StatusBadRequest, "claim must be an object with a string type: %v", err)
	}
	return c.Type, nil
}

func (s *Server) roleFor(c *caller, want Role) (Role, error) {
	if want == "" || want == RoleUser {
		return RoleUser, nil
	}
	if !c.isAdmin() {
		return "", errf(http.StatusForbidden, "only an Admin can assign the role %s", want)
	}
	return want, nil
}

func didDocument(did string, created time.Time) map[string]any {
	pub, _ := ParseDID(did)
	vm := map[string]any{
		"id":                 did + "#" + did[len("did:key:"):],
		"controller":         did,
		"type":               "Ed25519VerificationKey2018",
		"publicKeyBase58":    Base58Encode(pub),
		"publicKeyMultibase": did[len("did:key:"):],
	}
	return map[string]any{
		"id":                 did,
		"verificationMethod": []any{vm},
		"authentication":     []any{vm},
		"assertionMethod":    []string{vm["id"].(string)},
		"created":            jsTime(created),
		"updated":            jsTime(created),
		"immutable":          false,
	}
}

// createIdentity generates a key pair for IS clients (custodial for the
// response only: the server keeps the public key alone) and registers it.
func (s *Server) createIdentity(w http.ResponseWriter, r *http.Request, c *caller) error {
	var body identityBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	claimType, err := body.validate(false)
	if err != nil {
		return err
	}
	role, err := s.roleFor(c, body.Role)
	if err != nil {
		return err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	did := DIDFromPublicKey(pub)
	now := s.cfg.Now().UTC()
	id := Identity{ID: did, Username: body.Username, Role: role, ClaimType: claimType, Claim: body.Claim, Hidden: body.Hidden, Registered: now}
	if c != nil {
		id.Creator = c.ID
	}
	if err := s.cfg.Store.CreateIdentity(r.Context(), id); err != nil {
		return err
	}
	seed := Base58Encode(priv.Seed())
	pub58 := Base58Encode(pub)
	writeJSON(w, http.StatusCreated, map[string]any{
		"id":  did,
		"doc": didDocument(did, now),
		"key": map[string]string{"type": "ed25519", "public": pub58, "secret": seed, "encoding": "base58"},
		"keys": map[string]any{
			"sign": map[string]string{"type": "ed25519", "public": pub58, "private": seed, "encoding": "base58"},
		},
	})
	return nil
}

// registerIdentity registers an existing did:key (non-custodial: only the
// public key, which the DID itself carries, reaches the server).
func (s *Server) registerIdentity(w http.ResponseWriter, r *http.Request, c *caller) error {
	var body identityBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	claimType, err := body.validate(true)
	if err != nil {
		return err
	}
	role, err := s.roleFor(c, body.Role)
	if err != nil {
		return err
	}
	id := Identity{ID: body.ID, Username: body.Username, Role: role, ClaimType: claimType, Claim: body.Claim, Hidden: body.Hidden, Registered: s.cfg.Now().UTC()}
	if c != nil {
		id.Creator = c.ID
	}
	if err := s.cfg.Store.CreateIdentity(r.Context(), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.identityJSON(r, id, true))
	return nil
}

func (s *Server) updateIdentity(w http.ResponseWriter, r *http.Request, c *caller) error {
	var body identityBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	claimType, err := body.validate(true)
	if err != nil {
		return err
	}
	if body.ID != c.ID && !c.isAdmin() {
		return errf(http.StatusForbidden, "only the identity itself or an Admin can update it")
	}
	id, err := s.cfg.Store.GetIdentity(r.Context(), body.ID)
	if err != nil {
		return err
	}
	if body.Role != "" && body.Role != id.Role {
		if !c.isAdmin() {
			return errf(http.StatusForbidden, "only an Admin can change a role")
		}
		id.Role = body.Role
	}
	id.Username, id.ClaimType, id.Claim, id.Hidden = body.Username, claimType, body.Claim, body.Hidden
	if err := s.cfg.Store.UpdateIdentity(r.Context(), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.identityJSON(r, id, true))
	return nil
}

func (s *Server) deleteIdentity(w http.ResponseWriter, r *http.Request, c *caller) error {
	did, err := pathDID(r, "id")
	if err != nil {
		return err
	}
	if did != c.ID && !c.isAdmin() {
		return errf(http.StatusForbidden, "only the identity itself or an Admin can delete it")
	}
	if r.URL.Query().Get("revoke-credentials") == "true" {
		creds, err := s.cfg.Store.CredentialsOf(r.Context(), did)
		if err != nil {
			return err
		}
		for _, cr := range creds {
			if err := s.cfg.Store.RevokeCredential(r.Context(), cr.ID); err != nil {
				return err
			}
		}
	}
	if err := s.cfg.Store.DeleteIdentity(r.Context(), did); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getIdentity(w http.ResponseWriter, r *http.Request, c *caller) error {
	did, err := pathDID(r, "id")
	if err != nil {
		return err
	}
	id, err := s.cfg.Store.GetIdentity(r.Context(), did)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.identityJSON(r, id, !id.Hidden || c.ID == id.ID || c.isAdmin()))
	return nil
}

// identityJSON renders an identity; full adds the claim and credentials.
func (s *Server) identityJSON(r *http.Request, id Identity, full bool) map[string]any {
	out := map[string]any{
		"id":               id.ID,
		"username":         id.Username,
		"role":             id.Role,
		"hidden":           id.Hidden,
		"registrationDate": jsTime(id.Registered),
		"claim":            map[string]string{"type": id.ClaimType},
	}
	if id.Creator != "" {
		out["creator"] = id.Creator
	}
	verified, creds := s.verification(r, id.ID)
	out["isVerified"] = verified
	out["numberOfCredentials"] = len(creds)
	if full {
		if id.Claim != nil {
			out["claim"] = id.Claim
		}
		vcs := make([]json.RawMessage, 0, len(creds))
		for _, c := range creds {
			vcs = append(vcs, c.VC)
		}
		out["verifiableCredentials"] = vcs
	}
	return out
}

func (s *Server) searchIdentities(w http.ResponseWriter, r *http.Request, c *caller) error {
	q := r.URL.Query()
	limit, offset, err := paging(q.Get("limit"), q.Get("index"), 100, 100)
	if err != nil {
		return err
	}
	since, err := queryTime(q.Get("registration-date"))
	if err != nil {
		return err
	}
	ids, err := s.cfg.Store.SearchIdentities(r.Context(), IdentityQuery{
		Type: q.Get("type"), Username: q.Get("username"), Creator: q.Get("creator"),
		RegisteredSince: since, Limit: limit, Offset: offset, Asc: q.Get("asc") == "true",
	})
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.identityJSON(r, id, false))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) keyPair(w http.ResponseWriter, r *http.Request, _ *caller) error {
	switch kt := r.URL.Query().Get("key-type"); kt {
	case "", "ed25519":
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"type": "ed25519", "public": Base58Encode(pub), "private": Base58Encode(priv.Seed()), "encoding": "base58"})
	case "x25519":
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"type": "x25519", "public": Base58Encode(k.PublicKey().Bytes()), "private": Base58Encode(k.Bytes()), "encoding": "base58"})
	default:
		return errf(http.StatusBadRequest, "unknown key-type %q: use ed25519 or x25519", kt)
	}
	return nil
}

func (s *Server) latestDocument(w http.ResponseWriter, r *http.Request, _ *caller) error {
	did, err := pathDID(r, "id")
	if err != nil {
		return err
	}
	var created time.Time
	if id, err := s.cfg.Store.GetIdentity(r.Context(), did); err == nil {
		created = id.Registered
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"document": map[string]any{"doc": didDocument(did, created)}})
	return nil
}

// paging parses IS limit/index (index is a page number: offset =
// index*limit).
func paging(limitS, indexS string, def, max int) (limit, offset int, err error) {
	limit = def
	if limitS != "" {
		if limit, err = strconv.Atoi(limitS); err != nil || limit < 0 {
			return 0, 0, errf(http.StatusBadRequest, "limit must be a non-negative integer")
		}
		if limit == 0 || limit > max {
			limit = max
		}
	}
	if indexS != "" {
		idx, err := strconv.Atoi(indexS)
		if err != nil || idx < 0 || idx > 1<<20 {
			return 0, 0, errf(http.StatusBadRequest, "index must be a non-negative integer")
		}
		if limitS != "" {
			offset = idx * limit
		}
	}
	return limit, offset, nil
}

func queryTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		if t, err2 := time.Parse("2006-01-02", v); err2 == nil {
			return t, nil
		}
		return time.Time{}, errf(http.StatusBadRequest, "%q is not an ISO 8601 date-time", v)
	}
	return t, nil
}
