package identity

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/crmgate/crmgate/policy"
)

func testMapper() *Mapper {
	return &Mapper{
		Claims: Claims{
			Roles: "realm_roles",
			Attributes: map[string]string{
				"crm_user_id": "crm_uid",
				"account_id":  "acct",
				"manager_of":  "reports",
				"admin":       "is_admin",
			},
		},
		Roles: map[string][]string{
			"sales":   {"crm-sales", "sales-emea"},
			"support": {"crm-support"},
			"admin":   {"crm-admin"},
		},
		MFA: MFAEvidence{AMR: []string{"mfa", "otp", "hwk"}, ACR: []string{"urn:idp:acr:mfa"}},
	}
}

func TestMapperSubject(t *testing.T) {
	t.Parallel()
	full := map[string]any{
		"sub":         "alice",
		"email":       "alice@shop.example",
		"name":        "Alice",
		"realm_roles": []any{"crm-sales", "offline_access"},
		"groups":      []any{"crm-support", "everyone"},
		"teams":       "store-12",
		"crm_uid":     "u-17",
		"acct":        json.Number("9007199254740993"),
		"reports":     []any{"u-2", "u-3"},
		"is_admin":    false,
		"amr":         []any{"pwd", "otp"},
		"acr":         "urn:idp:acr:mfa",
		"auth_time":   json.Number("1763900000"),
	}
	got, err := testMapper().Subject(full, AuthSession)
	if err != nil {
		t.Fatal(err)
	}
	want := &policy.Subject{
		ID: "alice", Email: "alice@shop.example", Name: "Alice",
		// crm-sales via the roles claim, crm-support via groups; offline_access
		// and everyone map to nothing.
		Roles:  []string{"sales", "support"},
		Groups: []string{"crm-support", "everyone"},
		Teams:  []string{"store-12"},
		Attributes: map[string]any{
			"crm_user_id": "u-17",
			"account_id":  json.Number("9007199254740993"),
			"manager_of":  []any{"u-2", "u-3"},
			"admin":       false,
		},
		MFA: true, AMR: []string{"pwd", "otp"}, ACR: "urn:idp:acr:mfa", AuthTime: 1763900000,
		Auth: AuthSession,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}

	t.Run("does not alias claims", func(t *testing.T) {
		claims := map[string]any{"sub": "a", "reports": []any{"u-2"}, "realm_roles": []string{"x"}}
		m := &Mapper{Claims: Claims{Attributes: map[string]string{"m": "reports"}}}
		s, err := m.Subject(claims, AuthBearer)
		if err != nil {
			t.Fatal(err)
		}
		claims["reports"].([]any)[0] = "u-999"
		if s.Attributes["m"].([]any)[0] != "u-2" {
			t.Fatal("subject attribute shares the claims array")
		}
	})
}

func TestMapperRolesWithoutMapping(t *testing.T) {
	t.Parallel()
	m := &Mapper{}
	s, err := m.Subject(map[string]any{"sub": "a", "roles": []any{"b", "a", "b", ""}, "groups": []any{"g"}}, AuthBearer)
	if err != nil {
		t.Fatal(err)
	}
	// Groups never become roles by themselves; duplicates and empty values
	// are dropped.
	if !reflect.DeepEqual(s.Roles, []string{"a", "b"}) {
		t.Fatalf("roles = %v", s.Roles)
	}
	empty, err := m.Subject(map[string]any{"sub": "a"}, AuthBearer)
	if err != nil {
		t.Fatal(err)
	}
	if empty.Roles == nil || empty.Groups == nil || empty.Teams == nil || empty.AMR == nil || empty.Attributes == nil {
		t.Fatalf("absent claims must give empty, not nil, collections: %+v", empty)
	}
	if empty.MFA {
		t.Fatal("MFA without evidence")
	}
}

func TestMapperMFA(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		claims map[string]any
		want   bool
	}{
		{"amr otp", map[string]any{"amr": []any{"pwd", "otp"}}, true},
		{"amr single string", map[string]any{"amr": "hwk"}, true},
		{"amr pwd only", map[string]any{"amr": []any{"pwd"}}, false},
		{"acr mfa", map[string]any{"acr": "urn:idp:acr:mfa"}, true},
		{"weaker acr", map[string]any{"acr": "urn:idp:acr:pwd"}, false},
		{"acr prefix of accepted", map[string]any{"acr": "urn:idp:acr:mf"}, false},
		{"acr case differs", map[string]any{"acr": "URN:IDP:ACR:MFA"}, false},
		{"amr case differs", map[string]any{"amr": []any{"OTP"}}, false},
		{"mfa under another claim name", map[string]any{"AMR": []any{"mfa"}, "amr_values": []any{"mfa"}, "mfa": true, "acr_values": "urn:idp:acr:mfa"}, false},
		{"acr value inside amr", map[string]any{"amr": []any{"urn:idp:acr:mfa"}}, false},
		{"amr value as acr", map[string]any{"acr": "otp"}, false},
		{"nothing", map[string]any{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			claims := map[string]any{"sub": "a"}
			for k, v := range tt.claims {
				claims[k] = v
			}
			s, err := testMapper().Subject(claims, AuthBearer)
			if err != nil {
				t.Fatal(err)
			}
			if s.MFA != tt.want {
				t.Fatalf("MFA = %v, want %v", s.MFA, tt.want)
			}
		})
	}
	t.Run("no evidence configured", func(t *testing.T) {
		t.Parallel()
		s, err := (&Mapper{}).Subject(map[string]any{"sub": "a", "amr": []any{"mfa"}, "acr": ""}, AuthBearer)
		if err != nil {
			t.Fatal(err)
		}
		if s.MFA {
			t.Fatal("MFA granted with no evidence configured")
		}
	})
}

// TestMapperRefuses checks that wrongly typed or missing claims fail closed
// instead of producing a subject with less in it.
func TestMapperRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		claims map[string]any
	}{
		{"missing sub", map[string]any{}},
		{"empty sub", map[string]any{"sub": ""}},
		{"null sub", map[string]any{"sub": nil}},
		{"numeric sub", map[string]any{"sub": json.Number("42")}},
		{"array sub", map[string]any{"sub": []any{"alice"}}},
		{"roles object", map[string]any{"sub": "a", "realm_roles": map[string]any{"crm-admin": true}}},
		{"roles number", map[string]any{"sub": "a", "realm_roles": json.Number("1")}},
		{"roles bool", map[string]any{"sub": "a", "realm_roles": true}},
		{"roles mixed array", map[string]any{"sub": "a", "realm_roles": []any{"crm-admin", 1}}},
		{"roles nested array", map[string]any{"sub": "a", "realm_roles": []any{[]any{"crm-admin"}}}},
		{"groups object", map[string]any{"sub": "a", "groups": map[string]any{"crm-admin": 1}}},
		{"teams number", map[string]any{"sub": "a", "teams": 12.0}},
		{"email array", map[string]any{"sub": "a", "email": []any{"a@x"}}},
		{"name number", map[string]any{"sub": "a", "name": 1.0}},
		{"amr object", map[string]any{"sub": "a", "amr": map[string]any{"mfa": true}}},
		{"amr bool", map[string]any{"sub": "a", "amr": true}},
		{"acr array", map[string]any{"sub": "a", "acr": []any{"urn:idp:acr:mfa"}}},
		{"auth_time string", map[string]any{"sub": "a", "auth_time": "1763900000"}},
		{"auth_time huge", map[string]any{"sub": "a", "auth_time": 1e300}},
		{"auth_time not a number", map[string]any{"sub": "a", "auth_time": json.Number("x")}},
		{"attribute object", map[string]any{"sub": "a", "acct": map[string]any{"id": "acc-9"}}},
		{"attribute array of objects", map[string]any{"sub": "a", "reports": []any{map[string]any{"id": "u-2"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := testMapper().Subject(tt.claims, AuthBearer)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("got subject %+v, err %v; want ErrInvalidToken", s, err)
			}
		})
	}
	t.Run("unknown auth", func(t *testing.T) {
		t.Parallel()
		if _, err := testMapper().Subject(map[string]any{"sub": "a"}, "cookie"); err == nil {
			t.Fatal("unknown auth method accepted")
		}
	})
	t.Run("nil mapper", func(t *testing.T) {
		t.Parallel()
		var m *Mapper
		if _, err := m.Subject(map[string]any{"sub": "a"}, AuthBearer); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestMapperValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    *Mapper
		ok   bool
	}{
		{"zero", &Mapper{}, true},
		{"full", testMapper(), true},
		{"nil", nil, false},
		{"empty role", &Mapper{Roles: map[string][]string{"": {"x"}}}, false},
		{"role without values", &Mapper{Roles: map[string][]string{"sales": nil}}, false},
		{"empty idp value", &Mapper{Roles: map[string][]string{"sales": {"x", ""}}}, false},
		{"empty attribute claim", &Mapper{Claims: Claims{Attributes: map[string]string{"a": ""}}}, false},
		{"empty attribute name", &Mapper{Claims: Claims{Attributes: map[string]string{"": "c"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.m.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestMapperCustomIDClaim(t *testing.T) {
	t.Parallel()
	m := &Mapper{Claims: Claims{ID: "preferred_username"}}
	s, err := m.Subject(map[string]any{"sub": "f81d4fae", "preferred_username": "alice"}, AuthBearer)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "alice" {
		t.Fatalf("ID = %q", s.ID)
	}
	// The configured claim is required even when sub is present.
	if _, err := m.Subject(map[string]any{"sub": "f81d4fae"}, AuthBearer); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("missing configured id claim: err = %v", err)
	}
}
