package trail

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// CredentialProofType names the proof of lakeproof credentials: an Ed25519
// signature, base58-encoded, over the RFC 8785 canonical JSON of the
// credential without its "proof" member.
const CredentialProofType = "JcsEd25519Signature2020"

// VerifiedIdentityCredential is the credential type that makes an identity
// "verified" and lets it issue credentials to others.
const VerifiedIdentityCredential = "VerifiedIdentityCredential"

// CheckCredential verifies a credential's signature (by its issuer's
// did:key) and returns its issuer, subject and proof signature value. It
// does not decide trust or revocation.
func CheckCredential(vc []byte) (issuer, subject, sigValue string, err error) {
	var m map[string]any
	if err := json.Unmarshal(vc, &m); err != nil {
		return "", "", "", fmt.Errorf("credential: %w", err)
	}
	proof, _ := m["proof"].(map[string]any)
	if proof == nil {
		return "", "", "", errors.New("credential: no proof")
	}
	delete(m, "proof")
	issuer, _ = m["issuer"].(string)
	cs, _ := m["credentialSubject"].(map[string]any)
	if cs != nil {
		subject, _ = cs["id"].(string)
	}
	sigValue, _ = proof["signatureValue"].(string)
	vm, _ := proof["verificationMethod"].(string)
	if t, _ := proof["type"].(string); t != CredentialProofType {
		return "", "", "", fmt.Errorf("credential: unsupported proof type %q", t)
	}
	if !strings.HasPrefix(vm, issuer+"#") {
		return "", "", "", fmt.Errorf("credential: verification method %q is not a key of issuer %q", vm, issuer)
	}
	pub, err := ParseDID(issuer)
	if err != nil {
		return "", "", "", fmt.Errorf("credential issuer: %w", err)
	}
	sig, err := Base58Decode(sigValue)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return "", "", "", errors.New("credential: malformed signatureValue")
	}
	msg, err := CanonicalValue(m)
	if err != nil {
		return "", "", "", fmt.Errorf("credential: %w", err)
	}
	if !ed25519.Verify(pub, msg, sig) {
		return "", "", "", errors.New("credential: signature does not verify")
	}
	return issuer, subject, sigValue, nil
}

// checkTrust reports whether a credential verifies, its issuer is this
// gateway or a trusted root, and it is not revoked here.
func (s *Server) checkTrust(r *http.Request, vc []byte) (bool, string, error) {
	issuer, _, sigValue, err := CheckCredential(vc)
	if err != nil {
		return false, err.Error(), nil
	}
	trusted := issuer == s.did
	if !trusted {
		roots, err := s.cfg.Store.TrustedRoots(r.Context())
		if err != nil {
			return false, "", err
		}
		for _, root := range roots {
			trusted = trusted || root == issuer
		}
	}
	if !trusted {
		return false, "issuer " + issuer + " is not a trusted root", nil
	}
	c, err := s.cfg.Store.GetCredential(r.Context(), sigValue)
	switch {
	case err == nil && c.Revoked:
		return false, "credential is revoked", nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return false, "", err
	}
	return true, "", nil
}

// verification returns whether did holds a valid VerifiedIdentityCredential
// and its stored credentials. Store errors count as "not verified".
func (s *Server) verification(r *http.Request, did string) (bool, []Credential) {
	creds, err := s.cfg.Store.CredentialsOf(r.Context(), did)
	if err != nil {
		return false, nil
	}
	for _, c := range creds {
		if c.Revoked || !strings.Contains(string(c.VC), VerifiedIdentityCredential) {
			continue
		}
		if ok, _, err := s.checkTrust(r, c.VC); ok && err == nil {
			return true, creds
		}
	}
	return false, creds
}

func (s *Server) addTrustedRoot(w http.ResponseWriter, r *http.Request, c *caller) error {
	if !c.isAdmin() {
		return errf(http.StatusForbidden, "not authorized!: only an Admin manages trusted roots")
	}
	var body struct {
		TrustedRootID string `json:"trustedRootId"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if _, err := ParseDID(body.TrustedRootID); err != nil {
		return errf(http.StatusBadRequest, "%v", err)
	}
	if err := s.cfg.Store.AddTrustedRoot(r.Context(), body.TrustedRootID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) trustedRoots(w http.ResponseWriter, r *http.Request, _ *caller) error {
	roots, err := s.cfg.Store.TrustedRoots(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"trustedRoots": roots, "gateway": s.did})
	return nil
}

func (s *Server) removeTrustedRoot(w http.ResponseWriter, r *http.Request, c *caller) error {
	if !c.isAdmin() {
		return errf(http.StatusForbidden, "not authorized!: only an Admin manages trusted roots")
	}
	did, err := pathDID(r, "trustedRootId")
	if err != nil {
		return err
	}
	if err := s.cfg.Store.RemoveTrustedRoot(r.Context(), did); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// createCredential issues a credential signed by the gateway key: the
// caller (an Admin, a Manager or a verified identity) is recorded as
// credentialSubject.initiatorId.
func (s *Server) createCredential(w http.ResponseWriter, r *http.Request, c *caller) error {
	var body struct {
		Subject struct {
			ID             string          `json:"id"`
			CredentialType string          `json:"credentialType"`
			Claim          json.RawMessage `json:"claim"`
		} `json:"subject"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if _, err := ParseDID(body.Subject.ID); err != nil {
		return errf(http.StatusBadRequest, "subject.id: %v", err)
	}
	if body.Subject.CredentialType == "" || len(body.Subject.CredentialType) > 100 {
		return errf(http.StatusBadRequest, "subject.credentialType is required")
	}
	claim := map[string]any{}
	if t := strings.TrimSpace(string(body.Subject.Claim)); t != "" && t != "null" {
		if err := json.Unmarshal(body.Subject.Claim, &claim); err != nil {
			return errf(http.StatusBadRequest, "subject.claim must be an object: %v", err)
		}
	}
	if c.Role != RoleAdmin && c.Role != RoleManager {
		if ok, _ := s.verification(r, c.ID); !ok {
			return errf(http.StatusForbidden, "only an Admin, a Manager or a verified identity can issue credentials")
		}
	}
	if _, err := s.cfg.Store.GetIdentity(r.Context(), body.Subject.ID); err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	claim["id"] = body.Subject.ID
	claim["initiatorId"] = c.ID
	vc := map[string]any{
		"@context":          "https://www.w3.org/2018/credentials/v1",
		"id":                "urn:uuid:" + uuidV4(),
		"type":              []string{"VerifiableCredential", body.Subject.CredentialType},
		"credentialSubject": claim,
		"issuer":            s.did,
		"issuanceDate":      jsTime(now),
	}
	msg, err := CanonicalValue(vc)
	if err != nil {
		return errf(http.StatusBadRequest, "claim cannot be canonicalized: %v", err)
	}
	sigValue := Base58Encode(ed25519.Sign(s.cfg.GatewayKey, msg))
	vc["proof"] = map[string]string{
		"type":               CredentialProofType,
		"verificationMethod": s.did + "#" + s.did[len("did:key:"):],
		"signatureValue":     sigValue,
	}
	raw, err := json.Marshal(vc)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.PutCredential(r.Context(), Credential{ID: sigValue, Subject: body.Subject.ID, Issuer: s.did, VC: raw, Issued: now}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(raw)
	return err
}

func (s *Server) checkCredential(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var raw json.RawMessage
	if err := decodeBody(r, &raw); err != nil {
		return err
	}
	ok, reason, err := s.checkTrust(r, raw)
	if err != nil {
		return err
	}
	out := map[string]any{"isVerified": ok}
	if !ok {
		out["error"] = reason
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) revokeCredential(w http.ResponseWriter, r *http.Request, c *caller) error {
	var body struct {
		SignatureValue string `json:"signatureValue"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.SignatureValue == "" {
		return errf(http.StatusBadRequest, "no signatureValue provided")
	}
	cr, err := s.cfg.Store.GetCredential(r.Context(), body.SignatureValue)
	if err != nil {
		return err
	}
	var vc struct {
		CredentialSubject struct {
			InitiatorID string `json:"initiatorId"`
		} `json:"credentialSubject"`
	}
	_ = json.Unmarshal(cr.VC, &vc)
	if c.ID != cr.Subject && c.ID != vc.CredentialSubject.InitiatorID && c.Role != RoleAdmin && c.Role != RoleManager {
		return errf(http.StatusForbidden, "only the subject, the initiator, an Admin or a Manager can revoke a credential")
	}
	if err := s.cfg.Store.RevokeCredential(r.Context(), cr.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func uuidV4() string {
	b := []byte(randomHex(16))
	h := string(b)
	// version 4, variant 10
	v := []byte(h)
	v[12] = '4'
	v[16] = "89ab"[int(v[16])%4]
	h = string(v)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
