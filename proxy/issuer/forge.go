package issuer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Forgery kinds accepted by Issuer.Forge. Each is a classic way of getting a
// JWT accepted without the issuer's private key.
const (
	// ForgeNone is an unsigned token with "alg":"none" and the issuer's kid.
	ForgeNone = "none"
	// ForgeHS256PublicKey is HMAC-SHA256 keyed with the issuer's public key
	// (PEM, as a verifier would hold it): the algorithm-confusion attack on
	// verifiers that let the token pick the algorithm.
	ForgeHS256PublicKey = "hs256-pubkey"
	// ForgeForeignKey is RS256 signed by a freshly generated key that claims
	// the issuer's kid.
	ForgeForeignKey = "foreign-key"
)

// forgeTTL is the lifetime given to forged tokens, long enough that expiry
// is never the reason a verifier refuses them.
const forgeTTL = 5 * time.Minute

// Forge is for tests only: it mints a token that a correct verifier must
// refuse, carrying the same registered claims Mint would set (iss, iat, nbf,
// exp; caller-supplied values win) so that the forgery is the only thing
// wrong with it. kind is one of ForgeNone, ForgeHS256PublicKey and
// ForgeForeignKey.
func (i *Issuer) Forge(kind string, claims map[string]any) (string, error) {
	payload, err := json.Marshal(i.withRegistered(claims, forgeTTL))
	if err != nil {
		return "", fmt.Errorf("forge %s token: encode claims: %w", kind, err)
	}
	switch kind {
	case ForgeNone:
		// go-jose refuses to produce alg none, so the token is assembled by hand.
		header, err := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": i.kid})
		if err != nil {
			return "", fmt.Errorf("forge %s token: encode header: %w", kind, err)
		}
		enc := base64.RawURLEncoding
		return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + ".", nil
	case ForgeHS256PublicKey:
		der, err := x509.MarshalPKIXPublicKey(&i.key.PublicKey)
		if err != nil {
			return "", fmt.Errorf("forge %s token: encode public key: %w", kind, err)
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		s, err := newSigner(jose.HS256, secret, i.kid)
		if err != nil {
			return "", fmt.Errorf("forge %s token: %w", kind, err)
		}
		return sign(s, payload)
	case ForgeForeignKey:
		key, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return "", fmt.Errorf("forge %s token: generate key: %w", kind, err)
		}
		s, err := newSigner(jose.RS256, key, i.kid)
		if err != nil {
			return "", fmt.Errorf("forge %s token: %w", kind, err)
		}
		return sign(s, payload)
	default:
		return "", fmt.Errorf("forge token: unknown kind %q", kind)
	}
}
