package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/crmgate/crmgate/policy"
)

const (
	// DefaultCacheSize is the verified-token cache size when
	// BearerConfig.CacheSize is 0.
	DefaultCacheSize = 10000
	// cacheTTL caps how long a verified token is trusted without verifying
	// it again, so a key the IdP withdraws stops working within minutes
	// even for long-lived tokens.
	cacheTTL = 5 * time.Minute
	// clockSkew is how far in the future iat and nbf may be. go-oidc itself
	// only checks nbf, with five minutes of leeway; a token issued "later"
	// than a minute from now was not issued by a correctly running IdP.
	clockSkew = time.Minute
	// httpTimeout bounds discovery and JWKS requests with the default client.
	httpTimeout = 10 * time.Second
)

// DefaultAlgorithms returns the signing algorithms accepted when
// BearerConfig.Algorithms is empty. It is a function so that no caller can
// change the default for everyone else.
func DefaultAlgorithms() []string { return []string{oidc.RS256, oidc.ES256, oidc.PS256} }

// asymmetricAlgorithms are the only algorithms a bearer verifier may be
// configured with. "none" and the HMAC family are absent on purpose: with
// HS* anyone holding the (public) verification key could mint tokens.
var asymmetricAlgorithms = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.EdDSA,
}

// BearerConfig configures bearer-token verification.
type BearerConfig struct {
	// Issuer is the OpenID issuer URL; discovery and its JWKS are used.
	Issuer string
	// Audiences are accepted audiences: a token's aud must contain at least
	// one. Required.
	Audiences []string
	// Algorithms are the accepted signing algorithms (asymmetric only);
	// empty means DefaultAlgorithms().
	Algorithms []string
	// Mapper turns verified claims into the subject. Required.
	Mapper *Mapper
	// HTTPClient fetches discovery and keys; nil means a client with a
	// 10-second timeout.
	HTTPClient *http.Client
	// Now is the clock for expiry checks; nil means time.Now.
	Now func() time.Time
	// CacheSize bounds the verified-token cache; 0 means DefaultCacheSize.
	CacheSize int
	// KeyRefresh is the shortest time between two JWKS fetches; 0 means
	// DefaultKeyRefresh.
	KeyRefresh time.Duration
}

// Bearer verifies bearer JWTs from API clients. It is safe for concurrent
// use.
type Bearer struct {
	verifier  *oidc.IDTokenVerifier
	keys      *countingKeySet
	audiences []string
	mapper    *Mapper
	now       func() time.Time
	cache     *expirable.LRU[[sha256.Size]byte, cachedSubject]
}

// cachedSubject is a verified token's subject and the moment it stops being
// trusted: the token's expiry or cacheTTL after verification, whichever is
// first.
type cachedSubject struct {
	subject *policy.Subject
	until   time.Time
}

// countingKeySet counts signature verifications, which tests use to prove
// the cache spares them.
type countingKeySet struct {
	inner oidc.KeySet
	calls atomic.Int64
}

func (k *countingKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	k.calls.Add(1)
	return k.inner.VerifySignature(ctx, jwt)
}

// NewBearer validates cfg, runs OpenID discovery for cfg.Issuer (the
// discovered issuer must equal it exactly) and returns a verifier whose keys
// come from the discovered jwks_uri, refreshed when a signature does not
// verify (at most once per KeyRefresh).
func NewBearer(ctx context.Context, cfg BearerConfig) (*Bearer, error) {
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("new bearer verifier: issuer is required")
	}
	if len(cfg.Audiences) == 0 || slices.Contains(cfg.Audiences, "") {
		return nil, fmt.Errorf("new bearer verifier: at least one non-empty audience is required")
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms()
	}
	for _, a := range algs {
		if !slices.Contains(asymmetricAlgorithms, a) {
			return nil, fmt.Errorf("new bearer verifier: algorithm %q not allowed (allowed: %v)", a, asymmetricAlgorithms)
		}
	}
	if err := cfg.Mapper.Validate(); err != nil {
		return nil, fmt.Errorf("new bearer verifier: %w", err)
	}
	if cfg.CacheSize < 0 {
		return nil, fmt.Errorf("new bearer verifier: cache size %d is negative", cfg.CacheSize)
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: httpTimeout}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}

	octx := oidc.ClientContext(ctx, client)
	provider, err := oidc.NewProvider(octx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("new bearer verifier: discover %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("new bearer verifier: read discovery: %w", err)
	}
	if meta.JWKSURI == "" {
		return nil, fmt.Errorf("new bearer verifier: discovery document of %s has no jwks_uri", cfg.Issuer)
	}
	keys := &countingKeySet{inner: NewKeySet(meta.JWKSURI, client, cfg.KeyRefresh, now)}
	verifier := oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{
		// Audience is checked in Authenticate against a set, which go-oidc's
		// single ClientID cannot express.
		SkipClientIDCheck:    true,
		SupportedSigningAlgs: slices.Clone(algs),
		Now:                  now,
	})
	return &Bearer{
		verifier:  verifier,
		keys:      keys,
		audiences: slices.Clone(cfg.Audiences),
		mapper:    cfg.Mapper,
		now:       now,
		cache:     expirable.NewLRU[[sha256.Size]byte, cachedSubject](size, nil, cacheTTL),
	}, nil
}

// Authenticate verifies raw (signature against the issuer's keys, allowed
// algorithm, issuer, expiry, nbf and iat, audience) and maps its claims to a
// subject with Auth "bearer". Every error wraps ErrInvalidToken; its cause
// is for logs only.
//
// A verified token's subject is cached under the token's SHA-256 until the
// token expires or for five minutes, whichever is sooner, so repeated
// requests skip signature verification. The returned Subject is shared with
// other callers and must not be modified.
func (b *Bearer) Authenticate(ctx context.Context, raw string) (*policy.Subject, error) {
	if raw == "" {
		return nil, fmt.Errorf("authenticate bearer: %w: empty token", ErrInvalidToken)
	}
	if len(raw) > maxTokenBytes {
		return nil, fmt.Errorf("authenticate bearer: %w: token longer than %d bytes", ErrInvalidToken, maxTokenBytes)
	}
	key := tokenKey(raw)
	now := b.now()
	if c, ok := b.cache.Get(key); ok {
		if now.Before(c.until) {
			return c.subject, nil
		}
		b.cache.Remove(key)
	}
	tok, err := b.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("authenticate bearer: %w: %w", ErrInvalidToken, err)
	}
	if !b.audienceOK(tok.Audience) {
		return nil, fmt.Errorf("authenticate bearer: %w: audience %q not accepted", ErrInvalidToken, tok.Audience)
	}
	claims, err := decodeClaims(tok)
	if err != nil {
		return nil, fmt.Errorf("authenticate bearer: %w", err)
	}
	// go-oidc also accepts NumericDates written as JSON strings; RFC 7519
	// says numbers, and a token this odd is refused rather than interpreted.
	if _, ok := claims["exp"].(json.Number); !ok {
		return nil, fmt.Errorf("authenticate bearer: %w: exp is not a number", ErrInvalidToken)
	}
	for _, name := range []string{"iat", "nbf"} {
		v, present := claims[name]
		if !present {
			continue
		}
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("authenticate bearer: %w: %s is not a number", ErrInvalidToken, name)
		}
		t, err := unixClaim(claims, name)
		if err != nil {
			return nil, fmt.Errorf("authenticate bearer: %w", err)
		}
		if t > now.Add(clockSkew).Unix() {
			return nil, fmt.Errorf("authenticate bearer: %w: %s %s is in the future", ErrInvalidToken, name, n)
		}
	}
	subject, err := b.mapper.Subject(claims, AuthBearer)
	if err != nil {
		return nil, fmt.Errorf("authenticate bearer: %w", err)
	}
	until := now.Add(cacheTTL)
	if tok.Expiry.Before(until) {
		until = tok.Expiry
	}
	b.cache.Add(key, cachedSubject{subject: subject, until: until})
	return subject, nil
}

func (b *Bearer) audienceOK(aud []string) bool {
	for _, a := range aud {
		if a != "" && slices.Contains(b.audiences, a) {
			return true
		}
	}
	return false
}

// decodeClaims decodes the verified payload keeping numbers as json.Number,
// so numeric identifiers above 2^53 reach the policy unchanged.
func decodeClaims(tok *oidc.IDToken) (map[string]any, error) {
	var raw json.RawMessage
	if err := tok.Claims(&raw); err != nil {
		return nil, fmt.Errorf("%w: read claims: %w", ErrInvalidToken, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("%w: decode claims: %w", ErrInvalidToken, err)
	}
	return claims, nil
}

// tokenKey is the cache key of a raw token: its SHA-256, hashed from a
// pooled copy, since converting the string allocated a kilobyte for every
// request's token.
func tokenKey(raw string) [sha256.Size]byte {
	bp := tokenBufs.Get().(*[]byte)
	b := append((*bp)[:0], raw...)
	key := sha256.Sum256(b)
	*bp = b
	tokenBufs.Put(bp)
	return key
}

// tokenBufs hold at most maxTokenBytes each (Authenticate refuses longer
// tokens before hashing).
var tokenBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}
