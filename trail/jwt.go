package trail

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrBadToken reports a JWT that is malformed, forged, expired or not yet
// valid. The server answers it with 401.
var ErrBadToken = errors.New("invalid token")

// maxTokenLen bounds the JWTs ParseJWT looks at.
const maxTokenLen = 4096

// TokenUser is the IS "user" claim of a gateway JWT.
type TokenUser struct {
	ID       string `json:"id"`
	Role     Role   `json:"role"`
	Username string `json:"username"`
}

type jwtClaims struct {
	User TokenUser `json:"user"`
	Iat  int64     `json:"iat"`
	Exp  int64     `json:"exp"`
	Iss  string    `json:"iss,omitempty"`
}

var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// SignJWT issues an HS256 JWT {user, iat, exp} as IS does.
func SignJWT(secret []byte, u TokenUser, now time.Time, ttl time.Duration) (string, error) {
	body, err := json.Marshal(jwtClaims{User: u, Iat: now.Unix(), Exp: now.Add(ttl).Unix(), Iss: "lakeproof"})
	if err != nil {
		return "", fmt.Errorf("sign JWT for %s: %w", u.ID, err)
	}
	signing := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(body)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

// ParseJWT verifies an HS256 JWT made by SignJWT and returns its user. The
// header must be exactly HS256 (no "none", no algorithm switching).
func ParseJWT(secret []byte, token string, now time.Time) (TokenUser, error) {
	if len(token) > maxTokenLen {
		return TokenUser{}, fmt.Errorf("%w: too long", ErrBadToken)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return TokenUser{}, fmt.Errorf("%w: want 3 parts, have %d", ErrBadToken, len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return TokenUser{}, fmt.Errorf("%w: header: %w", ErrBadToken, err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &h); err != nil || h.Alg != "HS256" {
		return TokenUser{}, fmt.Errorf("%w: algorithm must be HS256", ErrBadToken)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return TokenUser{}, fmt.Errorf("%w: signature: %w", ErrBadToken, err)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, m.Sum(nil)) {
		return TokenUser{}, fmt.Errorf("%w: invalid signature", ErrBadToken)
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return TokenUser{}, fmt.Errorf("%w: claims: %w", ErrBadToken, err)
	}
	var c jwtClaims
	if err := json.Unmarshal(cb, &c); err != nil {
		return TokenUser{}, fmt.Errorf("%w: claims: %w", ErrBadToken, err)
	}
	if c.User.ID == "" {
		return TokenUser{}, fmt.Errorf("%w: no user claim", ErrBadToken)
	}
	if now.Unix() >= c.Exp {
		return TokenUser{}, fmt.Errorf("%w: jwt expired", ErrBadToken)
	}
	if c.Iat > now.Add(time.Minute).Unix() {
		return TokenUser{}, fmt.Errorf("%w: issued in the future", ErrBadToken)
	}
	return c.User, nil
}
