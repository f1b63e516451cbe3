package issuer

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	status int
	code   string
	desc   string
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func invalidGrant(desc string) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_grant", desc}
}

// tokenResponse is the token endpoint's success body.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope,omitempty"`
}

// serveToken redeems an authorization code or rotates a refresh token.
func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, &oauthError{http.StatusBadRequest, "invalid_request", "the form could not be read"}, false)
		return
	}
	// Parameters in the query string would end up in logs; RFC 6749 wants
	// them in the body, so only the body counts.
	form := r.PostForm
	c, basic, oerr := i.authenticateClient(r, form)
	if oerr != nil {
		writeOAuthError(w, oerr, basic)
		return
	}
	var (
		resp *tokenResponse
		err  error
	)
	switch form.Get("grant_type") {
	case "authorization_code":
		resp, err = i.redeemCode(c, form)
	case "refresh_token":
		resp, err = i.rotateRefresh(c, form)
	default:
		err = &oauthError{http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"}
	}
	if err != nil {
		var oe *oauthError
		if !errors.As(err, &oe) {
			oe = &oauthError{http.StatusInternalServerError, "server_error", "the issuer could not mint tokens"}
		}
		writeOAuthError(w, oe, basic)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, resp)
}

// authenticateClient accepts client_secret_basic or client_secret_post,
// never both at once (RFC 6749 §2.3), and reports whether Basic was used so
// that a failure can carry the matching WWW-Authenticate challenge.
func (i *Issuer) authenticateClient(r *http.Request, form url.Values) (Client, bool, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both halves are form-urlencoded before Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return Client{}, true, &oauthError{http.StatusUnauthorized, "invalid_client", "malformed client credentials"}
		}
		if form.Has("client_secret") {
			return Client{}, true, &oauthError{http.StatusBadRequest, "invalid_request", "use one client authentication method"}
		}
		if form.Has("client_id") && form.Get("client_id") != id {
			return Client{}, true, &oauthError{http.StatusBadRequest, "invalid_request", "client_id differs from the authenticated client"}
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	f := i.flow
	f.mu.Lock()
	c, known := f.client(id)
	f.mu.Unlock()
	// The secret is compared even for an unknown client id's empty
	// secret, which fails, so a missing client and a wrong secret look
	// the same to the caller.
	if !equal(secret, c.Secret) || !known {
		return Client{}, basic, &oauthError{http.StatusUnauthorized, "invalid_client", "client authentication failed"}
	}
	return c, basic, nil
}

func (i *Issuer) redeemCode(c Client, form url.Values) (*tokenResponse, error) {
	f := i.flow
	now := i.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.codes[form.Get("code")]
	if !ok || !now.Before(g.expires) {
		return nil, invalidGrant("unknown or expired code")
	}
	if g.used {
		// RFC 6749 §4.1.2: a code used twice revokes what it yielded,
		// since one of the two users stole it.
		f.revokeFamily(g.family)
		return nil, invalidGrant("code already used")
	}
	// A code is spent by the first attempt, right or wrong, so that the
	// verifier cannot be guessed by trying.
	g.used = true
	switch {
	case g.req.clientID != c.ID:
		return nil, invalidGrant("code was issued to another client")
	case form.Get("redirect_uri") != g.req.redirectURI:
		return nil, invalidGrant("redirect_uri differs from the authorization request")
	case !verifierMatches(form.Get("code_verifier"), g.req.challenge):
		return nil, invalidGrant("code_verifier does not match code_challenge")
	}
	p, ok := f.persona(g.persona)
	if !ok {
		return nil, invalidGrant("the persona no longer exists")
	}
	family, err := randomToken()
	if err != nil {
		return nil, err
	}
	g.family = family
	rt := &refresh{clientID: c.ID, persona: p.Name, mfa: g.mfa, scope: g.req.scope, authTime: g.authTime,
		family: family, expires: now.Add(RefreshTTL)}
	return i.issue(p, rt, g.req.nonce, now)
}

// verifierMatches checks an RFC 7636 code_verifier against an S256 challenge.
func verifierMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, ch := range verifier {
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	return equal(base64.RawURLEncoding.EncodeToString(sum[:]), challenge)
}

func (i *Issuer) rotateRefresh(c Client, form url.Values) (*tokenResponse, error) {
	f := i.flow
	now := i.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.refresh[form.Get("refresh_token")]
	if !ok || !now.Before(old.expires) {
		return nil, invalidGrant("unknown or expired refresh token")
	}
	if old.clientID != c.ID {
		return nil, invalidGrant("refresh token was issued to another client")
	}
	if old.rotated {
		// A rotated token presented again means two parties hold it:
		// end the whole sign-in (OAuth 2.0 Security BCP §4.14.2).
		f.revokeFamily(old.family)
		return nil, invalidGrant("refresh token already used")
	}
	p, ok := f.persona(old.persona)
	if !ok {
		return nil, invalidGrant("the persona no longer exists")
	}
	old.rotated = true
	next := *old
	next.rotated = false
	next.expires = now.Add(RefreshTTL)
	// Rotation must not extend a sign-in forever: the chain ends where
	// the first token of the family would have.
	if limit := old.authTime.Add(RefreshTTL); next.expires.After(limit) {
		next.expires = limit
	}
	// OpenID Connect Core §12.2: a refreshed ID token carries no nonce.
	return i.issue(p, &next, "", now)
}

// issue mints the ID and access tokens for p and stores rt as the new
// refresh token. f.mu must be held.
func (i *Issuer) issue(p Persona, rt *refresh, nonce string, now time.Time) (*tokenResponse, error) {
	amr, acr := []string{"pwd"}, ACRPassword
	if rt.mfa {
		amr, acr = []string{"pwd", "otp", "mfa"}, ACRMFA
	}
	claims := maps.Clone(p.Claims)
	if claims == nil {
		claims = map[string]any{}
	}
	maps.Copy(claims, map[string]any{
		"iss": i.url, "sub": p.subject(), "aud": rt.clientID, "azp": rt.clientID,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(i.flow.tokenTTL).Unix(),
		"auth_time": rt.authTime.Unix(), "amr": amr, "acr": acr,
	})
	delete(claims, "nonce")
	if nonce != "" {
		claims["nonce"] = nonce
	}
	idToken, err := i.Mint(claims, i.flow.tokenTTL)
	if err != nil {
		return nil, fmt.Errorf("issue tokens: %w", err)
	}
	// The access token is opaque: this issuer has no userinfo endpoint or
	// API that would accept it, and a JWT would invite using it as one.
	access, err := randomToken()
	if err != nil {
		return nil, fmt.Errorf("issue tokens: %w", err)
	}
	refreshToken, err := i.flow.addRefresh(rt, now)
	if err != nil {
		return nil, &oauthError{http.StatusServiceUnavailable, "temporarily_unavailable", "too many live refresh tokens"}
	}
	return &tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(i.flow.tokenTTL / time.Second),
		IDToken: idToken, RefreshToken: refreshToken, Scope: rt.scope}, nil
}

func writeOAuthError(w http.ResponseWriter, e *oauthError, basic bool) {
	if e.status == http.StatusUnauthorized && basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
	}
	body, _ := json.Marshal(map[string]string{"error": e.code, "error_description": e.desc})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// verifyOwn checks that raw is an RS256 JWS signed by this issuer's key and
// returns its claims, without looking at expiry.
func (i *Issuer) verifyOwn(raw string) (map[string]any, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	payload, err := jws.Verify(&i.key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("verify token: decode claims: %w", err)
	}
	return claims, nil
}
