package issuer_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/crmgate/crmgate/proxy/issuer"
)

// start serves a new issuer at srv.URL+path.
func start(t *testing.T, path string) *issuer.Issuer {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	iss, err := issuer.New(srv.URL + path)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.Config.Handler = iss.Handler()
	return iss
}

func TestNewRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "example.com", "ftp://example.com", "http://", "http://x/?a=b", "http://x/#f", "::"} {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			if _, err := issuer.New(u); err == nil {
				t.Fatalf("New(%q) succeeded", u)
			}
		})
	}
}

func TestDiscoveryAndMintVerifyWithGoOIDC(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", "/idp", "/realms/demo"} {
		t.Run("path="+path, func(t *testing.T) {
			t.Parallel()
			iss := start(t, path)
			ctx := context.Background()
			p, err := oidc.NewProvider(ctx, iss.URL())
			if err != nil {
				t.Fatalf("NewProvider: %v", err)
			}
			var meta map[string]any
			if err := p.Claims(&meta); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"issuer", "jwks_uri", "authorization_endpoint", "token_endpoint",
				"id_token_signing_alg_values_supported", "response_types_supported", "subject_types_supported"} {
				if _, ok := meta[k]; !ok {
					t.Errorf("discovery lacks %s", k)
				}
			}
			raw, err := iss.Mint(map[string]any{"sub": "alice", "aud": "crmgate", "roles": []string{"sales"}}, time.Minute)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			tok, err := p.Verifier(&oidc.Config{ClientID: "crmgate"}).Verify(ctx, raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tok.Subject != "alice" || tok.Issuer != iss.URL() {
				t.Fatalf("got sub %q iss %q", tok.Subject, tok.Issuer)
			}
			if d := time.Until(tok.Expiry); d <= 0 || d > time.Minute+time.Second {
				t.Fatalf("exp %v not now+1m", tok.Expiry)
			}
			var c map[string]any
			if err := tok.Claims(&c); err != nil {
				t.Fatal(err)
			}
			if c["nbf"] == nil || c["iat"] == nil {
				t.Fatalf("nbf/iat not set: %v", c)
			}
		})
	}
}

func TestAuthorizeAndTokenEndpointsAreNotImplemented(t *testing.T) {
	t.Parallel()
	iss, err := issuer.New("http://issuer.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/authorize", "/token"} {
		rec := httptest.NewRecorder()
		iss.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusNotImplemented {
			t.Errorf("%s: status %d", p, rec.Code)
		}
	}
}

func TestMintKeepsCallerRegisteredClaims(t *testing.T) {
	t.Parallel()
	iss, err := issuer.New("http://issuer.test")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := iss.Mint(map[string]any{"iss": "http://evil.test", "exp": 42}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := payload(t, raw)
	if c["iss"] != "http://evil.test" || c["exp"] != float64(42) {
		t.Fatalf("caller claims overwritten: %v", c)
	}
}

func header(t *testing.T, raw string) map[string]any {
	t.Helper()
	return decodePart(t, strings.Split(raw, ".")[0])
}

func payload(t *testing.T, raw string) map[string]any {
	t.Helper()
	return decodePart(t, strings.Split(raw, ".")[1])
}

func decodePart(t *testing.T, part string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("decode %q: %v", part, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestForge checks that each forgery is what it claims to be, so that a
// verifier refusing it is refusing the forgery and not some other defect.
func TestForge(t *testing.T) {
	t.Parallel()
	iss := start(t, "")
	resp, err := http.Get(iss.URL() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if len(set.Keys) != 1 || set.Keys[0].KeyID != iss.KeyID() {
		t.Fatalf("jwks = %+v", set.Keys)
	}
	pub := set.Keys[0].Key
	claims := map[string]any{"sub": "mallory", "aud": "crmgate"}

	t.Run("none", func(t *testing.T) {
		raw, err := iss.Forge(issuer.ForgeNone, claims)
		if err != nil {
			t.Fatal(err)
		}
		h := header(t, raw)
		if h["alg"] != "none" || h["kid"] != iss.KeyID() || !strings.HasSuffix(raw, ".") {
			t.Fatalf("header %v raw %q", h, raw)
		}
		if payload(t, raw)["iss"] != iss.URL() {
			t.Fatal("iss not set")
		}
	})
	t.Run("hs256-pubkey", func(t *testing.T) {
		raw, err := iss.Forge(issuer.ForgeHS256PublicKey, claims)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.HS256})
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if _, err := jws.Verify(secret); err != nil {
			t.Fatalf("not HMAC'd with the public key PEM: %v", err)
		}
		if jws.Signatures[0].Header.KeyID != iss.KeyID() {
			t.Fatal("kid differs")
		}
	})
	t.Run("foreign-key", func(t *testing.T) {
		raw, err := iss.Forge(issuer.ForgeForeignKey, claims)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		if jws.Signatures[0].Header.KeyID != iss.KeyID() {
			t.Fatal("kid differs")
		}
		if _, err := jws.Verify(pub); err == nil {
			t.Fatal("foreign-key token verifies with the issuer's key")
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if _, err := iss.Forge("rot13", claims); err == nil {
			t.Fatal("unknown kind accepted")
		}
	})
}
