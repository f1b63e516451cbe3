package app_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/crmgate/crmgate/proxy/demo"
)

// adminClaims are sam's claims with MFA: what a forger wants.
func adminClaims() map[string]any {
	return map[string]any{"sub": "sam", "aud": demo.Audience, "roles": []string{"admin"}, "crm_user_id": "u-admin", "amr": []string{"pwd", "otp"}}
}

// with returns a copy of c with the given claims set (nil deletes).
func with(c map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// bearer sets the attack's Authorization header from a token made with the
// environment's issuer.
func bearer(make func(t *testing.T, e *env) string) func(t *testing.T, e *env, a *attack) {
	return func(t *testing.T, e *env, a *attack) {
		a.hdr = append([]string{"Authorization", "Bearer " + make(t, e)}, a.hdr...)
	}
}

func minted(claims map[string]any, ttl time.Duration) func(t *testing.T, e *env) string {
	return func(t *testing.T, e *env) string {
		tok, err := e.iss.Mint(claims, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

func forged(kind string, claims map[string]any) func(t *testing.T, e *env) string {
	return func(t *testing.T, e *env) string {
		tok, err := e.iss.Forge(kind, claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// selfSigned signs claims with a fresh key and publishes that key in the
// token's own header (embedded jwk, or a jku/x5u pointing elsewhere).
func selfSigned(header string) func(t *testing.T, e *env) string {
	return func(t *testing.T, e *env) string {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", e.iss.KeyID())
		switch header {
		case "jwk":
			opts.EmbedJWK = true
		default:
			opts = opts.WithHeader(jose.HeaderKey(header), "https://evil.example/keys")
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		claims := with(adminClaims(), "iss", e.iss.URL(), "exp", time.Now().Add(time.Hour).Unix(), "iat", time.Now().Unix())
		payload, _ := json.Marshal(claims)
		jws, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// spliced takes alice's genuine token and replaces its payload with the
// admin's claims, keeping alice's signature.
func spliced(t *testing.T, e *env) string {
	parts := strings.Split(e.tokens["alice"], ".")
	claims := with(adminClaims(), "iss", e.iss.URL(), "exp", time.Now().Add(time.Hour).Unix())
	payload, _ := json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
}

func tokenAttacks(*testing.T) []attack {
	users := "/Api/V8/module/Users"
	invalid := func(name string, tok func(t *testing.T, e *env) string) attack {
		return attack{name: name, method: "GET", path: users, status: 401, kind: "invalid-token", leak: staffOnly, prep: bearer(tok)}
	}
	denied := func(name string, claims map[string]any, status int, kind string) attack {
		return attack{name: name, method: "GET", path: users, status: status, kind: kind, leak: staffOnly, prep: bearer(minted(claims, time.Hour))}
	}
	header := func(name string, status int, kind string, hdr func(e *env) []string) attack {
		return attack{name: name, method: "GET", path: users, status: status, kind: kind, leak: staffOnly,
			prep: func(t *testing.T, e *env, a *attack) { a.hdr = hdr(e) }}
	}
	admin := adminClaims()
	out := []attack{
		invalid("forged/alg none as admin", forged("none", admin)),
		invalid("forged/hs256 keyed with the public key as admin", forged("hs256-pubkey", admin)),
		invalid("forged/foreign key claiming the issuer's kid", forged("foreign-key", admin)),
		invalid("forged/embedded jwk", selfSigned("jwk")),
		invalid("forged/jku pointing elsewhere", selfSigned("jku")),
		invalid("forged/x5u pointing elsewhere", selfSigned("x5u")),
		invalid("forged/alice's signature on admin claims", spliced),
		invalid("forged/signature stripped", func(t *testing.T, e *env) string {
			p := strings.Split(e.tokens["sam"], ".")
			return p[0] + "." + p[1] + "."
		}),
		invalid("forged/signature truncated", func(t *testing.T, e *env) string { tok := e.tokens["sam"]; return tok[:len(tok)-4] }),
		invalid("forged/header swapped to none on a real token", func(t *testing.T, e *env) string {
			p := strings.Split(e.tokens["sam"], ".")
			return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + p[1] + "." + p[2]
		}),
		invalid("time/expired two minutes ago", minted(admin, -2*time.Minute)),
		invalid("time/not valid for an hour", minted(with(admin, "nbf", time.Now().Add(time.Hour).Unix()), 2*time.Hour)),
		invalid("time/issued in the future", minted(with(admin, "iat", time.Now().Add(time.Hour).Unix()), 2*time.Hour)),
		invalid("time/exp as a string", minted(with(admin, "exp", "9999999999"), time.Hour)),
		invalid("time/exp at the epoch", minted(with(admin, "exp", 1), time.Hour)),
		invalid("issuer/another issuer", minted(with(admin, "iss", "https://evil.example"), time.Hour)),
		invalid("issuer/trailing slash", func(t *testing.T, e *env) string {
			return minted(with(admin, "iss", e.iss.URL()+"/"), time.Hour)(t, e)
		}),
		invalid("audience/another audience", minted(with(admin, "aud", "another-app"), time.Hour)),
		invalid("audience/missing", minted(with(admin, "aud", nil), time.Hour)),
		invalid("audience/padded", minted(with(admin, "aud", demo.Audience+" "), time.Hour)),
		invalid("audience/empty in a list", minted(with(admin, "aud", []string{""}), time.Hour)),
		invalid("subject/missing", minted(with(admin, "sub", nil), time.Hour)),
		invalid("subject/empty", minted(with(admin, "sub", ""), time.Hour)),
		invalid("subject/number", minted(with(admin, "sub", 7), time.Hour)),
		invalid("claims/roles of the wrong type", minted(with(admin, "roles", map[string]any{"admin": true}), time.Hour)),
		denied("roles/admin in a role claim", with(admin, "roles", nil, "role", "admin"), 403, "forbidden"),
		denied("roles/admin in groups", with(admin, "roles", []string{"customer"}, "groups", []string{"admin"}), 403, "forbidden"),
		denied("roles/admin in keycloak realm_access", with(admin, "roles", nil, "realm_access", map[string]any{"roles": []string{"admin"}}), 403, "forbidden"),
		denied("roles/admin in a namespaced claim", with(admin, "roles", nil, "https://crmgate/roles", []string{"admin"}), 403, "forbidden"),
		denied("roles/capitalised claim name", with(admin, "roles", nil, "Roles", []string{"admin"}), 403, "forbidden"),
		denied("roles/upper-case role", with(admin, "roles", []string{"ADMIN"}), 403, "forbidden"),
		denied("roles/padded role", with(admin, "roles", []string{"admin "}), 403, "forbidden"),
		denied("mfa/amr claiming mfa via an mfa boolean", with(admin, "amr", []string{"pwd"}, "mfa", true), 401, "step-up-required"),
		denied("mfa/amr in a capitalised claim", with(admin, "amr", []string{"pwd"}, "AMR", []string{"otp"}), 401, "step-up-required"),
		denied("mfa/amr_values", with(admin, "amr", []string{"pwd"}, "amr_values", []string{"otp"}), 401, "step-up-required"),
		denied("mfa/acr not configured as evidence", with(admin, "amr", []string{"pwd"}, "acr", "urn:other-idp:acr:mfa"), 401, "step-up-required"),
		denied("mfa/configured acr with a different case", with(admin, "amr", []string{"pwd"}, "acr", "URN:CRMGATE:ACR:MFA"), 401, "step-up-required"),
		denied("mfa/upper-case OTP", with(admin, "amr", []string{"pwd", "OTP"}), 401, "step-up-required"),
		denied("mfa/padded otp", with(admin, "amr", []string{"pwd", "otp "}), 401, "step-up-required"),
		denied("mfa/no amr at all", with(admin, "amr", nil), 401, "step-up-required"),
		header("place/token in the query string", 401, "unauthenticated", func(*env) []string { return nil }),
		header("place/token in a cookie", 401, "unauthenticated", func(e *env) []string {
			return []string{"Cookie", "access_token=" + e.tokens["sam"] + "; Authorization=Bearer%20" + e.tokens["sam"]}
		}),
		header("place/token in X-Access-Token", 401, "unauthenticated", func(e *env) []string { return []string{"X-Access-Token", e.tokens["sam"]} }),
		header("place/token in X-Auth-Token", 401, "unauthenticated", func(e *env) []string { return []string{"X-Auth-Token", e.tokens["sam"]} }),
		header("place/two authorization headers", 401, "invalid-token", func(e *env) []string {
			return []string{"Authorization", "Bearer " + e.tokens["alice"], "Authorization", "Bearer " + e.tokens["sam"]}
		}),
		header("place/two tokens in one header", 401, "invalid-token", func(e *env) []string {
			return []string{"Authorization", "Bearer " + e.tokens["alice"] + ", Bearer " + e.tokens["sam"]}
		}),
		header("place/two tokens separated by a space", 401, "invalid-token", func(e *env) []string {
			return []string{"Authorization", "Bearer " + e.tokens["alice"] + " " + e.tokens["sam"]}
		}),
		header("place/lower-case scheme keeps alice alice", 403, "forbidden", func(e *env) []string {
			return []string{"Authorization", "bearer " + e.tokens["alice"]}
		}),
		header("place/upper-case scheme keeps alice alice", 403, "forbidden", func(e *env) []string {
			return []string{"Authorization", "BEARER " + e.tokens["alice"]}
		}),
		header("place/token with a trailing dot", 401, "invalid-token", func(e *env) []string {
			return []string{"Authorization", "Bearer " + e.tokens["sam"] + "."}
		}),
		header("place/Digest scheme", 401, "invalid-token", func(*env) []string {
			return []string{"Authorization", `Digest username="sam", realm="crm", response="x"`}
		}),
		header("place/Negotiate scheme", 401, "invalid-token", func(*env) []string { return []string{"Authorization", "Negotiate YIIx"} }),
		header("place/Proxy-Authorization alone", 401, "unauthenticated", func(e *env) []string {
			return []string{"Proxy-Authorization", "Bearer " + e.tokens["sam"]}
		}),
	}
	// The query-string token needs the token in the path.
	for i := range out {
		if out[i].name == "place/token in the query string" {
			out[i].prep = func(t *testing.T, e *env, a *attack) { a.path = users + "?access_token=" + e.tokens["sam"] }
		}
	}
	out = append(out,
		attack{name: "forged/espo alg none as admin", crm: "espocrm", method: "GET", path: "/api/v1/User", status: 401, kind: "invalid-token",
			leak: staffOnly, prep: bearer(forged("none", admin))},
		attack{name: "forged/espo foreign key", crm: "espocrm", method: "DELETE", path: "/api/v1/Account/acc-2", status: 401, kind: "invalid-token",
			prep: bearer(forged("foreign-key", admin)), check: unchanged("Accounts", "acc-2", "name", "Riley household")},
	)
	return out
}
