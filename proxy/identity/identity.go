// Package identity decides who is calling: it verifies API clients'
// bearer JWTs with go-oidc against the configured OpenID issuer and turns
// verified claims into the policy.Subject the policy sees. Browser sessions
// reuse the same Mapper, so both kinds of caller get identical subjects.
//
// Everything here fails closed: a claim of the wrong type, a missing
// subject, an audience not configured or an algorithm not allowed is an
// error, never a subject with less in it.
package identity

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors. Errors returned by this package wrap one of them, plus a
// cause meant for logs only (never for clients).
var (
	// ErrNoCredentials means the request carries no credentials at all.
	// BearerToken reports that as ok false instead; the error is for
	// callers that have tried every method (session, bearer) and found none.
	ErrNoCredentials = errors.New("no credentials")
	// ErrInvalidToken means credentials were presented but cannot be
	// accepted: malformed, forged, expired, for another audience, or with
	// claims crmgate cannot map.
	ErrInvalidToken = errors.New("invalid token")
)

// How a subject authenticated (policy.Subject.Auth).
const (
	AuthSession = "session"
	AuthBearer  = "bearer"
)

// maxTokenBytes bounds the size of a bearer token crmgate will parse, so an
// oversized header cannot make it decode and hash megabytes per request.
// IdPs that put many groups into tokens stay far below this.
const maxTokenBytes = 64 << 10

// BearerToken extracts the token from the request's Authorization header.
// It returns ok false and a nil error when there is no Authorization header.
// A header that is present but not exactly one well-formed
// "Bearer <token>" (two Authorization headers, another scheme, a missing or
// malformed token) is an error wrapping ErrInvalidToken: a client that
// tried to authenticate and got it wrong is refused, not treated as
// anonymous.
func BearerToken(h http.Header) (string, bool, error) {
	values := h.Values("Authorization")
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", false, fmt.Errorf("read bearer token: %w: %d authorization headers", ErrInvalidToken, len(values))
	}
	v := values[0]
	scheme, token, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		// The scheme name is case-insensitive (RFC 9110 §11.1).
		return "", false, fmt.Errorf("read bearer token: %w: authorization scheme is not bearer", ErrInvalidToken)
	}
	// RFC 9110 allows 1*SP between scheme and credentials.
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", false, fmt.Errorf("read bearer token: %w: empty token", ErrInvalidToken)
	}
	if len(token) > maxTokenBytes {
		return "", false, fmt.Errorf("read bearer token: %w: token longer than %d bytes", ErrInvalidToken, maxTokenBytes)
	}
	if !isB64Token(token) {
		return "", false, fmt.Errorf("read bearer token: %w: token has characters outside b64token", ErrInvalidToken)
	}
	return token, true, nil
}

// isB64Token reports whether s matches RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// Anything else (spaces, commas, control characters) means the header was
// not a single token and is refused rather than guessed at.
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && b64TokenChar[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// b64TokenChar marks b64token's characters before the padding. A table:
// every request's token (a JWT is about a kilobyte) goes through the loop,
// where the chain of comparisons cost two nanoseconds a byte.
var b64TokenChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()
