package login

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestIdPGoneAfterDiscovery: discovery succeeded at start, then the IdP
// went away. A new login must get the IdP-unavailable answer instead of a
// redirect to a dead address, for a browser and for an API client.
func TestIdPGoneAfterDiscovery(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	start := func(accept string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, LoginPath+"?rd=/x", nil)
		r.Header.Set("Accept", accept)
		w := httptest.NewRecorder()
		rg.login.Routes().ServeHTTP(w, r)
		return w
	}
	if w := start("text/html"); w.Code != http.StatusFound {
		t.Fatalf("login with the idp up: %d", w.Code)
	}
	rg.idp.srv.Close()
	// Within probeTTL the last answer still vouches for the IdP.
	if w := start("text/html"); w.Code != http.StatusFound {
		t.Fatalf("login within the probe ttl: %d", w.Code)
	}
	rg.clock.Add(probeTTL)
	for _, accept := range []string{"text/html", "application/json"} {
		w := start(accept)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Location") != "" {
			t.Fatalf("login with the idp gone (%s): %d to %q", accept, w.Code, w.Header().Get("Location"))
		}
	}
	// Every later attempt asks again rather than trusting a stale answer.
	if w := start("text/html"); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("second login with the idp gone: %d", w.Code)
	}
}
