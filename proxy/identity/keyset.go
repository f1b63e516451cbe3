package identity

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// DefaultKeyRefresh is the shortest time between two fetches of an
// issuer's JWKS.
const DefaultKeyRefresh = 30 * time.Second

// maxJWKSBytes bounds a JWKS document.
const maxJWKSBytes = 1 << 20

// KeySet checks JWT signatures against an issuer's published keys and
// refreshes them from its jwks_uri when a signature does not verify, at
// most once per refresh interval. go-oidc's remote key set fetches the JWKS
// again on every failed verification, so a stream of forged tokens naming
// the IdP's key id would make crmgate hammer the IdP; here a forgery costs
// a local signature check. The checks themselves are go-oidc's
// StaticKeySet (go-jose).
type KeySet struct {
	url     string
	client  *http.Client
	every   time.Duration
	now     func() time.Time
	mu      sync.Mutex // serialises refreshes
	last    time.Time
	keys    atomic.Pointer[oidc.StaticKeySet]
	fetches atomic.Int64
}

// NewKeySet returns a key set for jwksURL that refreshes at most once per
// every (DefaultKeyRefresh when zero).
func NewKeySet(jwksURL string, client *http.Client, every time.Duration, now func() time.Time) *KeySet {
	if every <= 0 {
		every = DefaultKeyRefresh
	}
	if now == nil {
		now = time.Now
	}
	if client == nil {
		client = &http.Client{Timeout: httpTimeout}
	}
	return &KeySet{url: jwksURL, client: client, every: every, now: now}
}

// VerifySignature implements oidc.KeySet.
func (k *KeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	if ks := k.keys.Load(); ks != nil {
		if payload, err := ks.VerifySignature(ctx, jwt); err == nil {
			return payload, nil
		}
	}
	if err := k.refresh(ctx); err != nil {
		return nil, err
	}
	ks := k.keys.Load()
	if ks == nil {
		return nil, errors.New("verify signature: no issuer keys")
	}
	return ks.VerifySignature(ctx, jwt)
}

// Fetches reports how many times the JWKS was fetched.
func (k *KeySet) Fetches() int64 { return k.fetches.Load() }

// refresh fetches the JWKS unless that happened less than the refresh
// interval ago; the keys in hand then stay in use.
func (k *KeySet) refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if !k.last.IsZero() && now.Sub(k.last) < k.every {
		return nil
	}
	k.last = now
	k.fetches.Add(1)
	keys, err := k.fetch(ctx)
	if err != nil {
		return err
	}
	k.keys.Store(&oidc.StaticKeySet{PublicKeys: keys})
	return nil
}

func (k *KeySet) fetch(ctx context.Context) ([]crypto.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: status %d", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("fetch jwks: document too large")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	var keys []crypto.PublicKey
	for _, jwk := range set.Keys {
		// Only public signing keys: an encryption key or a secret in the
		// document must never verify a signature.
		if jwk.Use == "enc" || !jwk.IsPublic() || !jwk.Valid() {
			continue
		}
		keys = append(keys, jwk.Key)
	}
	if len(keys) == 0 {
		return nil, errors.New("fetch jwks: no public signing keys")
	}
	return keys, nil
}
