package trail

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrBadToken reports a JWT that is malformed, forged, expired or not yet
// valid. The server answers it with 401.
var ErrBadToken = errors.New("invalid token")

// maxTokenLen bounds the JWTs ParseJWT looks at.
const maxTokenLen = 4096

// maxIatSkew is how far in the future a token's iat may lie (clock skew
// between gateway processes sharing a secret).
const maxIatSkew = time.Minute

// TokenUser is the IS "user" claim of a gateway JWT.
type TokenUser struct {
	ID       string `json:"id"`
	Role     Role   `json:"role"`
	Username string `json:"username"`
}

// jwtClaims is the claim set of a gateway JWT: IS's {user, iat, exp} plus
// iss "lakeproof".
type jwtClaims struct {
	User TokenUser `json:"user"`
	jwt.RegisteredClaims
}

// jwtMethod is the only algorithm the gateway issues and accepts.
var jwtMethod = jwt.SigningMethodHS256

// SignJWT issues an HS256 JWT {user, iat, exp, iss} as IS does.
func SignJWT(secret []byte, u TokenUser, now time.Time, ttl time.Duration) (string, error) {
	c := jwtClaims{User: u, RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    "lakeproof",
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	tok, err := jwt.NewWithClaims(jwtMethod, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign JWT for %s: %w", u.ID, err)
	}
	return tok, nil
}

// ParseJWT verifies an HS256 JWT made by SignJWT and returns its user. The
// algorithm is pinned to HS256 (no "none", no algorithm switching), exp is
// required and strict, iat may be at most a minute in the future, and the
// segments must be canonical unpadded base64url (one token, one spelling).
// Every failure wraps ErrBadToken.
func ParseJWT(secret []byte, token string, now time.Time) (TokenUser, error) {
	if len(token) > maxTokenLen {
		return TokenUser{}, fmt.Errorf("%w: too long", ErrBadToken)
	}
	var c jwtClaims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if t.Method != jwtMethod {
			return nil, fmt.Errorf("algorithm must be HS256")
		}
		return secret, nil
	},
		jwt.WithValidMethods([]string{jwtMethod.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return TokenUser{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	if c.User.ID == "" {
		return TokenUser{}, fmt.Errorf("%w: no user claim", ErrBadToken)
	}
	if c.IssuedAt != nil && c.IssuedAt.After(now.Add(maxIatSkew)) {
		return TokenUser{}, fmt.Errorf("%w: issued in the future", ErrBadToken)
	}
	return c.User, nil
}
