// Package issuer is a minimal in-process OpenID issuer for `crmgate demo`
// and for tests: it publishes a discovery document and a JWK set, mints
// RS256-signed JWTs with whatever claims the caller asks for, and, when
// given personas (WithPersonas), runs an authorization-code login flow with
// PKCE whose sign-in page lets the user pick a persona, with or without MFA.
//
// It is NOT an identity provider and must never be used in production: it
// authenticates nobody (whoever clicks a persona becomes it), signs anything
// it is handed, keeps its key and its codes in memory only, and can forge
// invalid tokens on purpose (see Issuer.Forge).
package issuer

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Paths served under the issuer URL's own path.
const (
	discoveryPath = "/.well-known/openid-configuration"
	jwksPath      = "/jwks"
	authorizePath = "/authorize"
	tokenPath     = "/token"
	logoutPath    = "/logout"
)

// rsaBits is the size of the generated signing key; 2048 is the minimum
// go-jose and most verifiers accept for RS256.
const rsaBits = 2048

// Issuer holds one RSA signing key and the issuer URL it signs for. It is
// safe for concurrent use.
type Issuer struct {
	url    string
	prefix string // the issuer URL's path without a trailing slash
	kid    string
	key    *rsa.PrivateKey
	signer jose.Signer
	// flow is the login flow; nil when the issuer has no personas.
	flow *flow
	// Now is the clock used for iat/nbf/exp; tests may replace it before
	// minting. nil means time.Now.
	Now func() time.Time
}

// New generates a fresh RSA-2048 key with a random key id and returns an
// issuer for issuerURL, which must be an absolute http or https URL. The
// handler serves the discovery document and JWK set under that URL's path,
// and the login flow when opts include WithPersonas.
func New(issuerURL string, opts ...Option) (*Issuer, error) {
	u, err := url.Parse(issuerURL)
	if err != nil {
		return nil, fmt.Errorf("new issuer: parse url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("new issuer: url %q must be an absolute http(s) url without query or fragment", issuerURL)
	}
	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, fmt.Errorf("new issuer: generate key: %w", err)
	}
	kid, err := randomKID()
	if err != nil {
		return nil, fmt.Errorf("new issuer: %w", err)
	}
	signer, err := newSigner(jose.RS256, key, kid)
	if err != nil {
		return nil, fmt.Errorf("new issuer: %w", err)
	}
	var set settings
	for _, o := range opts {
		o(&set)
	}
	iss := &Issuer{
		url:    issuerURL,
		prefix: strings.TrimSuffix(u.Path, "/"),
		kid:    kid,
		key:    key,
		signer: signer,
	}
	if len(set.personas) > 0 {
		if iss.flow, err = newFlow(set); err != nil {
			return nil, fmt.Errorf("new issuer: %w", err)
		}
	} else if len(set.clients) > 0 {
		return nil, fmt.Errorf("new issuer: clients need personas to sign in as")
	}
	return iss, nil
}

func randomKID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate kid: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func newSigner(alg jose.SignatureAlgorithm, key any, kid string) (jose.Signer, error) {
	s, err := jose.NewSigner(
		jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg)}},
		// The kid is also set as an extra header because go-jose leaves it
		// out for symmetric keys, and the forgeries need it.
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid),
	)
	if err != nil {
		return nil, fmt.Errorf("create %s signer: %w", alg, err)
	}
	return s, nil
}

// URL returns the issuer URL exactly as given to New; it is the value of
// the iss claim and of the discovery document's issuer.
func (i *Issuer) URL() string { return i.url }

// KeyID returns the kid of the signing key.
func (i *Issuer) KeyID() string { return i.kid }

func (i *Issuer) endpoint(path string) string {
	return strings.TrimSuffix(i.url, "/") + path
}

// Handler serves, under the issuer URL's path, GET
// /.well-known/openid-configuration and GET /jwks, and the login flow:
// GET /authorize (the persona page), POST /authorize (its form), POST
// /token and GET or POST /logout. Without personas the flow's endpoints
// are still advertised, because discovery requires them, but answer 501.
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+i.prefix+discoveryPath, i.serveDiscovery)
	mux.HandleFunc("GET "+i.prefix+jwksPath, i.serveJWKS)
	if i.flow == nil {
		notImplemented := func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "this test issuer has no personas, so no login flow", http.StatusNotImplemented)
		}
		for _, p := range []string{authorizePath, tokenPath, logoutPath} {
			mux.HandleFunc(i.prefix+p, notImplemented)
		}
		return mux
	}
	mux.HandleFunc("GET "+i.prefix+authorizePath, i.serveAuthorize)
	mux.HandleFunc("POST "+i.prefix+authorizePath, i.serveSignIn)
	mux.HandleFunc("POST "+i.prefix+tokenPath, i.serveToken)
	mux.HandleFunc("GET "+i.prefix+logoutPath, i.serveLogout)
	mux.HandleFunc("POST "+i.prefix+logoutPath, i.serveLogout)
	return mux
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer":                                         i.url,
		"jwks_uri":                                       i.endpoint(jwksPath),
		"authorization_endpoint":                         i.endpoint(authorizePath),
		"token_endpoint":                                 i.endpoint(tokenPath),
		"end_session_endpoint":                           i.endpoint(logoutPath),
		"id_token_signing_alg_values_supported":          []string{string(jose.RS256)},
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"subject_types_supported":                        []string{"public"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                               []string{"openid", "profile", "email", "offline_access"},
		"acr_values_supported":                           []string{ACRPassword, ACRMFA},
		"claims_supported":                               []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "azp"},
		"authorization_response_iss_parameter_supported": true,
	})
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       &i.key.PublicKey,
		KeyID:     i.kid,
		Algorithm: string(jose.RS256),
		Use:       "sig",
	}}})
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

// withRegistered returns a copy of claims with iss, iat, nbf and exp set
// from the issuer and ttl. Values the caller already put in claims are kept,
// so a test can mint a token for a foreign issuer or with a future nbf.
func (i *Issuer) withRegistered(claims map[string]any, ttl time.Duration) map[string]any {
	now := i.now()
	out := make(map[string]any, len(claims)+4)
	out["iss"] = i.url
	out["iat"] = now.Unix()
	out["nbf"] = now.Unix()
	out["exp"] = now.Add(ttl).Unix()
	maps.Copy(out, claims)
	return out
}

// Mint signs claims with the issuer's RS256 key. It sets iss, iat, nbf and
// exp (now + ttl; a negative ttl mints an already expired token) unless the
// caller supplied them; the caller supplies sub, aud and everything else.
func (i *Issuer) Mint(claims map[string]any, ttl time.Duration) (string, error) {
	payload, err := json.Marshal(i.withRegistered(claims, ttl))
	if err != nil {
		return "", fmt.Errorf("mint token: encode claims: %w", err)
	}
	return sign(i.signer, payload)
}

func sign(s jose.Signer, payload []byte) (string, error) {
	jws, err := s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("sign token: serialize: %w", err)
	}
	return raw, nil
}
