package identity_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/crmgate/crmgate/proxy/identity"
	"github.com/crmgate/crmgate/proxy/issuer"
)

// Example wires a bearer verifier to the in-process test issuer and
// authenticates one request.
func Example() {
	srv := httptest.NewServer(nil)
	defer srv.Close()
	iss, err := issuer.New(srv.URL)
	if err != nil {
		panic(err)
	}
	srv.Config.Handler = iss.Handler()

	bearer, err := identity.NewBearer(context.Background(), identity.BearerConfig{
		Issuer:    iss.URL(),
		Audiences: []string{"crmgate"},
		Mapper: &identity.Mapper{
			Claims: identity.Claims{Attributes: map[string]string{"crm_user_id": "crm_uid"}},
			Roles:  map[string][]string{"sales": {"crm-sales"}},
			MFA:    identity.MFAEvidence{AMR: []string{"otp"}},
		},
	})
	if err != nil {
		panic(err)
	}
	token, err := iss.Mint(map[string]any{
		"sub": "alice", "aud": "crmgate", "groups": []string{"crm-sales"},
		"crm_uid": "u-17", "amr": []string{"pwd", "otp"},
	}, time.Minute)
	if err != nil {
		panic(err)
	}

	req := httptest.NewRequest(http.MethodGet, "/Api/V8/module/Accounts", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	raw, ok, err := identity.BearerToken(req.Header)
	if err != nil || !ok {
		panic("no bearer token")
	}
	s, err := bearer.Authenticate(req.Context(), raw)
	if err != nil {
		panic(err)
	}
	fmt.Println(s.ID, s.Roles, s.Attributes["crm_user_id"], s.MFA, s.Auth)
	// Output: alice [sales] u-17 true bearer
}
