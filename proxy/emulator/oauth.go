package emulator

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"
)

// accessTokens are the bearer tokens an emulator's client-credentials
// endpoint issued, each valid until its expiry. The SuiteCRM, Dataverse
// and Salesforce emulators share it; only their token formats and error
// bodies differ.
type accessTokens struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (t *accessTokens) issue(tok string, ttl time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]time.Time{}
	}
	t.m[tok] = time.Now().Add(ttl)
}

func (t *accessTokens) revoke(tok string) {
	t.mu.Lock()
	delete(t.m, tok)
	t.mu.Unlock()
}

// valid reports whether r carries a bearer token issued here and not
// expired.
func (t *accessTokens) valid(r *http.Request) bool {
	tok, ok := bearer(r)
	if !ok {
		return false
	}
	t.mu.Lock()
	exp, known := t.m[tok]
	t.mu.Unlock()
	return known && time.Now().Before(exp)
}

// bearer is the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// clientIs reports whether a parsed client-credentials request
// authenticates as clientID with clientSecret: client_id and
// client_secret in the form, or HTTP Basic when the form has no client_id
// (RFC 6749 §2.3.1 allows either), compared in constant time.
func clientIs(r *http.Request, clientID, clientSecret string) bool {
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok && id == "" {
		id, secret = bid, bsecret
	}
	return subtle.ConstantTimeCompare([]byte(id), []byte(clientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(clientSecret)) == 1
}
