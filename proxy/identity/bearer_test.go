package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmgate/crmgate/proxy/issuer"
)

const testAudience = "crmgate-api"

// clock is a settable time source shared by the issuer and the verifier.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().Truncate(time.Second).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type fixture struct {
	iss   *issuer.Issuer
	clock *clock
	jwks  *atomic.Int64 // JWKS fetches
	b     *Bearer
}

// newFixture serves a test issuer and builds a verifier for it.
func newFixture(t testing.TB, mod func(*BearerConfig)) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), jwks: &atomic.Int64{}}
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	iss, err := issuer.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	iss.Now = f.clock.Now
	f.iss = iss
	h := iss.Handler()
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jwks" {
			f.jwks.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	cfg := BearerConfig{
		Issuer:     iss.URL(),
		Audiences:  []string{testAudience, "other-api"},
		Mapper:     testMapper(),
		HTTPClient: srv.Client(),
		Now:        f.clock.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	f.b, err = NewBearer(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewBearer: %v", err)
	}
	return f
}

func baseClaims() map[string]any {
	return map[string]any{
		"sub":         "alice",
		"aud":         testAudience,
		"realm_roles": []string{"crm-sales"},
		"crm_uid":     "u-17",
		"amr":         []string{"pwd", "otp"},
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	for i := 0; i < len(kv); i += 2 {
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func without(c map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		delete(c, k)
	}
	return c
}

func (f *fixture) mint(t testing.TB, claims map[string]any, ttl time.Duration) string {
	t.Helper()
	raw, err := f.iss.Mint(claims, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestAuthenticateValid(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	s, err := f.b.Authenticate(context.Background(), f.mint(t, with(baseClaims(),
		"acct", 9007199254740993, "auth_time", f.clock.Now().Unix()), time.Minute))
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if s.ID != "alice" || s.Auth != AuthBearer || !s.MFA {
		t.Fatalf("subject %+v", s)
	}
	if len(s.Roles) != 1 || s.Roles[0] != "sales" {
		t.Fatalf("roles %v", s.Roles)
	}
	if s.Attributes["crm_user_id"] != "u-17" {
		t.Fatalf("attributes %v", s.Attributes)
	}
	// A float64 decode would have turned this id into ...992.
	if n, ok := s.Attributes["account_id"].(json.Number); !ok || n.String() != "9007199254740993" {
		t.Fatalf("account_id = %#v, want exact json.Number", s.Attributes["account_id"])
	}
	if s.AuthTime != f.clock.Now().Unix() {
		t.Fatalf("auth_time %d", s.AuthTime)
	}
}

func TestAuthenticateAudiences(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name string
		aud  any // nil: no aud claim
		ok   bool
	}{
		{"first configured", testAudience, true},
		{"second configured", "other-api", true},
		{"array containing one", []string{"someone-else", "other-api"}, true},
		{"wrong", "someone-else", false},
		{"array without one", []string{"someone-else", "third"}, false},
		{"absent", nil, false},
		{"empty string", "", false},
		{"empty array", []string{}, false},
		{"prefix", "crmgate", false},
		{"case", "CRMGATE-API", false},
		{"number", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := without(baseClaims(), "aud")
			if tt.aud != nil {
				c["aud"] = tt.aud
			}
			_, err := f.b.Authenticate(context.Background(), f.mint(t, c, time.Minute))
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func tamper(t *testing.T, raw string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	b, err = json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func retype(t *testing.T, raw, alg string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	h, err := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	if err != nil {
		t.Fatal(err)
	}
	parts[0] = base64.RawURLEncoding.EncodeToString(h)
	return strings.Join(parts, ".")
}

// TestAuthenticateRefuses is the bypass corpus: every token here must be
// refused with ErrInvalidToken, and none may be cached.
func TestAuthenticateRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	now := f.clock.Now()
	forge := func(kind string) func(t *testing.T) string {
		return func(t *testing.T) string {
			raw, err := f.iss.Forge(kind, baseClaims())
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}
	}
	mint := func(c map[string]any, ttl time.Duration) func(t *testing.T) string {
		return func(t *testing.T) string { return f.mint(t, c, ttl) }
	}
	valid := func(t *testing.T) string { return f.mint(t, baseClaims(), time.Minute) }
	tests := []struct {
		name  string
		token func(t *testing.T) string
	}{
		{"alg none", forge(issuer.ForgeNone)},
		{"hs256 keyed with public key", forge(issuer.ForgeHS256PublicKey)},
		{"foreign key same kid", forge(issuer.ForgeForeignKey)},
		{"wrong iss", mint(with(baseClaims(), "iss", "http://evil.example"), time.Minute)},
		{"iss with trailing slash", mint(with(baseClaims(), "iss", f.iss.URL()+"/"), time.Minute)},
		{"no iss", mint(with(baseClaims(), "iss", nil), time.Minute)},
		{"wrong aud", mint(with(baseClaims(), "aud", "someone-else"), time.Minute)},
		{"no aud", mint(without(baseClaims(), "aud"), time.Minute)},
		{"expired", mint(baseClaims(), -time.Second)},
		{"no exp", mint(with(baseClaims(), "exp", nil), time.Minute)},
		{"exp string", mint(with(baseClaims(), "exp", "9999999999"), time.Minute)},
		{"nbf beyond go-oidc leeway", mint(with(baseClaims(), "nbf", now.Add(10*time.Minute).Unix()), time.Hour)},
		{"nbf beyond our skew", mint(with(baseClaims(), "nbf", now.Add(2*time.Minute).Unix()), time.Hour)},
		{"iat in the future", mint(with(baseClaims(), "iat", now.Add(2*time.Minute).Unix()), time.Hour)},
		{"iat string", mint(with(baseClaims(), "iat", "0"), time.Hour)},
		{"iat null", mint(with(baseClaims(), "iat", nil), time.Hour)},
		{"nbf string", mint(with(baseClaims(), "nbf", "0"), time.Hour)},
		{"exp float", mint(with(baseClaims(), "exp", 1.5), time.Hour)},
		{"tampered sub", func(t *testing.T) string {
			return tamper(t, valid(t), func(c map[string]any) { c["sub"] = "admin" })
		}},
		{"tampered roles", func(t *testing.T) string {
			return tamper(t, valid(t), func(c map[string]any) { c["realm_roles"] = []string{"crm-admin"} })
		}},
		{"header alg swapped to RS512", func(t *testing.T) string { return retype(t, valid(t), "RS512") }},
		{"header alg swapped to none", func(t *testing.T) string { return retype(t, valid(t), "none") }},
		{"signature stripped", func(t *testing.T) string {
			raw := valid(t)
			return raw[:strings.LastIndex(raw, ".")+1]
		}},
		{"truncated", func(t *testing.T) string { raw := valid(t); return raw[:len(raw)-10] }},
		{"two segments", func(t *testing.T) string { raw := valid(t); return raw[:strings.LastIndex(raw, ".")] }},
		{"garbage", func(*testing.T) string { return "not-a-jwt" }},
		{"garbage segments", func(*testing.T) string { return "a.b.c" }},
		{"empty", func(*testing.T) string { return "" }},
		{"oversized", func(*testing.T) string { return strings.Repeat("a", maxTokenBytes+1) }},
		{"missing sub", mint(without(baseClaims(), "sub"), time.Minute)},
		{"empty sub", mint(with(baseClaims(), "sub", ""), time.Minute)},
		{"roles of wrong type", mint(with(baseClaims(), "realm_roles", map[string]any{"crm-admin": true}), time.Minute)},
		{"amr of wrong type", mint(with(baseClaims(), "amr", map[string]any{"mfa": true}), time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := tt.token(t)
			for range 2 { // the second attempt would be a cache hit if it had been cached
				s, err := f.b.Authenticate(context.Background(), raw)
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("got subject %+v, err %v; want ErrInvalidToken", s, err)
				}
				if s != nil {
					t.Fatal("subject returned with error")
				}
			}
		})
	}
}

// TestAuthenticateClockSkew pins down what go-oidc and this package do with
// tokens that are not yet valid, so a dependency upgrade cannot loosen it.
func TestAuthenticateClockSkew(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	now := f.clock.Now()
	for _, claim := range []string{"nbf", "iat"} {
		t.Run(claim+" within skew", func(t *testing.T) {
			t.Parallel()
			raw := f.mint(t, with(baseClaims(), claim, now.Add(30*time.Second).Unix()), time.Hour)
			if _, err := f.b.Authenticate(context.Background(), raw); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

func TestAuthenticateAlgorithmNotConfigured(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *BearerConfig) { c.Algorithms = []string{"ES256"} })
	_, err := f.b.Authenticate(context.Background(), f.mint(t, baseClaims(), time.Minute))
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("RS256 token accepted by an ES256-only verifier: %v", err)
	}
}

func TestAuthenticateMFA(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name   string
		claims map[string]any
		want   bool
	}{
		{"amr otp", baseClaims(), true},
		{"amr pwd only", with(baseClaims(), "amr", []string{"pwd"}), false},
		{"acr mfa", with(baseClaims(), "amr", []string{"pwd"}, "acr", "urn:idp:acr:mfa"), true},
		{"weaker acr", with(baseClaims(), "amr", []string{"pwd"}, "acr", "urn:idp:acr:pwd"), false},
		{"mfa under another claim name", with(without(baseClaims(), "amr"), "AMR", []string{"mfa"}, "amr_values", []string{"otp"}, "mfa", true), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := f.b.Authenticate(context.Background(), f.mint(t, tt.claims, time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if s.MFA != tt.want {
				t.Fatalf("MFA = %v, want %v (amr %v acr %q)", s.MFA, tt.want, s.AMR, s.ACR)
			}
		})
	}
}

func TestAuthenticateCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("hit skips verification", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil)
		raw := f.mint(t, baseClaims(), time.Minute)
		first, err := f.b.Authenticate(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		second, err := f.b.Authenticate(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		if first != second {
			t.Fatal("second call did not return the cached subject")
		}
		if n := f.b.keys.calls.Load(); n != 1 {
			t.Fatalf("signature verifications = %d, want 1", n)
		}
		if n := f.jwks.Load(); n != 1 {
			t.Fatalf("JWKS fetches = %d, want 1", n)
		}
	})

	t.Run("expired entry refused", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil)
		raw := f.mint(t, baseClaims(), 2*time.Minute)
		if _, err := f.b.Authenticate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(2*time.Minute + time.Second)
		if _, err := f.b.Authenticate(ctx, raw); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("expired token served: err = %v", err)
		}
		if n := f.b.keys.calls.Load(); n != 2 {
			t.Fatalf("signature verifications = %d, want 2 (expired entry must not be a hit)", n)
		}
	})

	t.Run("entry re-verified after cache lifetime", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil)
		raw := f.mint(t, baseClaims(), time.Hour)
		if _, err := f.b.Authenticate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(cacheTTL - time.Second)
		if _, err := f.b.Authenticate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		if n := f.b.keys.calls.Load(); n != 1 {
			t.Fatalf("verifications = %d before cache lifetime, want 1", n)
		}
		f.clock.Advance(2 * time.Second)
		if _, err := f.b.Authenticate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		if n := f.b.keys.calls.Load(); n != 2 {
			t.Fatalf("verifications = %d after cache lifetime, want 2", n)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, func(c *BearerConfig) { c.CacheSize = 2 })
		for i := range 3 {
			if _, err := f.b.Authenticate(ctx, f.mint(t, with(baseClaims(), "jti", i), time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if n := f.b.cache.Len(); n != 2 {
			t.Fatalf("cache holds %d entries, want 2", n)
		}
	})
}

func TestAuthenticateConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tokens := []string{f.mint(t, baseClaims(), time.Minute), f.mint(t, with(baseClaims(), "sub", "bob"), time.Minute)}
	forged, err := f.iss.Forge(issuer.ForgeForeignKey, baseClaims())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 20 {
				s, err := f.b.Authenticate(context.Background(), tokens[i%2])
				if err != nil || s.ID != []string{"alice", "bob"}[i%2] {
					t.Errorf("got %v, %v", s, err)
					return
				}
				if _, err := f.b.Authenticate(context.Background(), forged); err == nil {
					t.Error("forged token accepted under concurrency")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNewBearerRefusesConfig(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	iss, err := issuer.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// This server publishes the issuer's discovery document, which names
	// iss.URL() and not its own URL.
	impostor := httptest.NewServer(iss.Handler())
	t.Cleanup(impostor.Close)
	srv.Config.Handler = iss.Handler()

	good := func() BearerConfig {
		return BearerConfig{Issuer: iss.URL(), Audiences: []string{testAudience}, Mapper: &Mapper{}, HTTPClient: srv.Client()}
	}
	tests := []struct {
		name string
		mod  func(*BearerConfig)
	}{
		{"no issuer", func(c *BearerConfig) { c.Issuer = "" }},
		{"no audiences", func(c *BearerConfig) { c.Audiences = nil }},
		{"empty audience", func(c *BearerConfig) { c.Audiences = []string{testAudience, ""} }},
		{"alg none", func(c *BearerConfig) { c.Algorithms = []string{"RS256", "none"} }},
		{"alg HS256", func(c *BearerConfig) { c.Algorithms = []string{"HS256"} }},
		{"alg lowercase", func(c *BearerConfig) { c.Algorithms = []string{"rs256"} }},
		{"nil mapper", func(c *BearerConfig) { c.Mapper = nil }},
		{"invalid mapper", func(c *BearerConfig) { c.Mapper = &Mapper{Roles: map[string][]string{"admin": {""}}} }},
		{"negative cache", func(c *BearerConfig) { c.CacheSize = -1 }},
		{"discovered issuer differs", func(c *BearerConfig) { c.Issuer = impostor.URL }},
		{"unreachable", func(c *BearerConfig) { c.Issuer = "http://127.0.0.1:1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := good()
			tt.mod(&cfg)
			if b, err := NewBearer(context.Background(), cfg); err == nil {
				t.Fatalf("NewBearer accepted config, got %v", b)
			}
		})
	}
	t.Run("good", func(t *testing.T) {
		t.Parallel()
		if _, err := NewBearer(context.Background(), good()); err != nil {
			t.Fatalf("NewBearer: %v", err)
		}
	})
}

func BenchmarkAuthenticate(b *testing.B) {
	f := newFixture(b, nil)
	ctx := context.Background()
	raw := f.mint(b, with(baseClaims(), "groups", []string{"crm-support", "everyone"}, "acr", "urn:idp:acr:mfa"), time.Hour)
	if _, err := f.b.Authenticate(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.b.Authenticate(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f.b.cache.Purge()
			if _, err := f.b.Authenticate(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
