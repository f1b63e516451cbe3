package identity

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestForgedTokensDoNotHammerTheIdP: tokens that name the issuer's key id
// but carry a bad signature are refused with the keys in hand; the JWKS is
// fetched again at most once per refresh interval, however many arrive.
func TestForgedTokensDoNotHammerTheIdP(t *testing.T) {
	f := newFixture(t, nil)
	good := f.mint(t, baseClaims(), time.Hour)
	if _, err := f.b.Authenticate(context.Background(), good); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	forged, err := f.iss.Forge("foreign-key", baseClaims())
	if err != nil {
		t.Fatal(err)
	}
	tampered := tamper(t, good, func(c map[string]any) { c["roles"] = []string{"admin"} })
	before := f.jwks.Load()
	for i := 0; i < 50; i++ {
		for _, tok := range []string{forged, tampered} {
			if _, err := f.b.Authenticate(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("forged token accepted or wrong error: %v", err)
			}
		}
	}
	if n := f.jwks.Load() - before; n > 1 {
		t.Fatalf("100 forged tokens caused %d JWKS fetches, want at most 1", n)
	}
	// After the interval a refresh is allowed again (key rotation still
	// reaches crmgate), and the valid token keeps working throughout.
	f.clock.Advance(DefaultKeyRefresh + time.Second)
	if _, err := f.b.Authenticate(context.Background(), forged); err == nil {
		t.Fatal("forged token accepted after refresh")
	}
	if n := f.jwks.Load() - before; n > 2 {
		t.Fatalf("JWKS fetches after the interval = %d, want at most 2", n)
	}
	if _, err := f.b.Authenticate(context.Background(), f.mint(t, baseClaims(), time.Hour)); err != nil {
		t.Fatalf("valid token after forgeries: %v", err)
	}
}
