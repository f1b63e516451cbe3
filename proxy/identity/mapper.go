package identity

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/crmgate/crmgate/policy"
)

// Default claim names, used for any Claims field left empty.
const (
	DefaultIDClaim     = "sub"
	DefaultEmailClaim  = "email"
	DefaultNameClaim   = "name"
	DefaultRolesClaim  = "roles"
	DefaultGroupsClaim = "groups"
	DefaultTeamsClaim  = "teams"
)

// The registered claims that carry authentication evidence. Their names are
// fixed by OpenID Connect Core §2, not configurable: MFA asserted under any
// other name is not evidence.
const (
	amrClaim      = "amr"
	acrClaim      = "acr"
	authTimeClaim = "auth_time"
)

// Claims names the token claims that feed a Subject. An empty name means
// the Default*Claim of the same field.
type Claims struct {
	ID, Email, Name, Roles, Groups, Teams string
	// Attributes maps a subject attribute name to the claim it is copied
	// from.
	Attributes map[string]string
}

// MFAEvidence lists the values that count as multi-factor authentication:
// any one amr value in AMR, or an acr equal to one in ACR. Values are
// compared exactly; an acr not listed (a weaker level) does not count.
type MFAEvidence struct {
	AMR []string
	ACR []string
}

// Mapper turns verified claims into a policy.Subject. The zero value maps
// the default claim names, uses the roles claim as-is and never grants MFA.
// A Mapper must not be modified once in use; it is safe for concurrent use.
type Mapper struct {
	Claims Claims
	// Roles maps a crmgate role to the IdP values (from the roles or groups
	// claim) that grant it. When empty, the roles claim's values are used
	// as the crmgate roles unchanged.
	Roles map[string][]string
	MFA   MFAEvidence
}

// Validate reports configuration mistakes that would make the mapping
// silently grant or withhold roles: empty role names, empty IdP values and
// empty attribute or claim names.
func (m *Mapper) Validate() error {
	if m == nil {
		return fmt.Errorf("validate mapper: mapper is nil")
	}
	for role, values := range m.Roles {
		if role == "" {
			return fmt.Errorf("validate mapper: roles: empty role name")
		}
		if len(values) == 0 {
			return fmt.Errorf("validate mapper: roles.%s: no idp values", role)
		}
		if slices.Contains(values, "") {
			return fmt.Errorf("validate mapper: roles.%s: empty idp value", role)
		}
	}
	for attr, claim := range m.Claims.Attributes {
		if attr == "" || claim == "" {
			return fmt.Errorf("validate mapper: attributes: empty attribute or claim name (%q: %q)", attr, claim)
		}
	}
	return nil
}

func orDefault(name, def string) string {
	if name == "" {
		return def
	}
	return name
}

// Subject maps verified claims to a new Subject authenticated by auth
// (AuthSession or AuthBearer). The id claim must be a non-empty string.
// Every other claim it reads may be absent, but a claim present with the
// wrong type is an error wrapping ErrInvalidToken rather than ignored, so a
// misconfigured IdP cannot quietly produce subjects with fewer roles or
// restrictions than intended.
//
// Numbers are kept as the caller decoded them; Bearer decodes with
// json.Number so that numeric ids above 2^53 keep their precision. The
// returned Subject shares nothing with claims and is never modified again,
// so it may be cached and shared between goroutines; callers must not
// modify it.
func (m *Mapper) Subject(claims map[string]any, auth string) (*policy.Subject, error) {
	if m == nil {
		return nil, fmt.Errorf("map subject: %w: no mapper", ErrInvalidToken)
	}
	if auth != AuthSession && auth != AuthBearer {
		return nil, fmt.Errorf("map subject: unknown auth method %q", auth)
	}
	c := m.Claims
	idClaim := orDefault(c.ID, DefaultIDClaim)
	id, err := stringClaim(claims, idClaim)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("map subject: %w: id claim %q missing or empty", ErrInvalidToken, idClaim)
	}
	s := &policy.Subject{ID: id, Auth: auth}
	if s.Email, err = stringClaim(claims, orDefault(c.Email, DefaultEmailClaim)); err != nil {
		return nil, err
	}
	if s.Name, err = stringClaim(claims, orDefault(c.Name, DefaultNameClaim)); err != nil {
		return nil, err
	}
	asserted, err := stringsClaim(claims, orDefault(c.Roles, DefaultRolesClaim))
	if err != nil {
		return nil, err
	}
	if s.Groups, err = stringsClaim(claims, orDefault(c.Groups, DefaultGroupsClaim)); err != nil {
		return nil, err
	}
	if s.Teams, err = stringsClaim(claims, orDefault(c.Teams, DefaultTeamsClaim)); err != nil {
		return nil, err
	}
	s.Roles = m.mapRoles(asserted, s.Groups)
	if s.Attributes, err = attributes(claims, c.Attributes); err != nil {
		return nil, err
	}
	if s.AMR, err = stringsClaim(claims, amrClaim); err != nil {
		return nil, err
	}
	if s.ACR, err = stringClaim(claims, acrClaim); err != nil {
		return nil, err
	}
	if s.AuthTime, err = unixClaim(claims, authTimeClaim); err != nil {
		return nil, err
	}
	s.MFA = m.mfa(s.AMR, s.ACR)
	return s, nil
}

// mapRoles grants each configured crmgate role whose IdP values intersect
// the asserted roles or groups; without a mapping the asserted roles are
// used unchanged. The result is sorted so that equal subjects compare and
// log equally.
func (m *Mapper) mapRoles(roles, groups []string) []string {
	if len(m.Roles) == 0 {
		out := slices.Clone(roles)
		slices.Sort(out)
		return slices.Compact(out)
	}
	out := make([]string, 0, len(m.Roles))
	for role, values := range m.Roles {
		for _, v := range values {
			if slices.Contains(roles, v) || slices.Contains(groups, v) {
				out = append(out, role)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func (m *Mapper) mfa(amr []string, acr string) bool {
	for _, v := range amr {
		if slices.Contains(m.MFA.AMR, v) {
			return true
		}
	}
	return acr != "" && slices.Contains(m.MFA.ACR, acr)
}

func wrongType(name string, v any, want string) error {
	return fmt.Errorf("map subject: %w: claim %q is %T, want %s", ErrInvalidToken, name, v, want)
}

// stringClaim returns the claim as a string; absent or null is "".
func stringClaim(claims map[string]any, name string) (string, error) {
	v, ok := claims[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", wrongType(name, v, "string")
	}
	return s, nil
}

// stringsClaim accepts a string (one value) or an array of strings, the two
// shapes IdPs use for multi-valued claims. Empty strings are dropped: they
// can match nothing. The result is never nil, so the policy sees [] rather
// than null.
func stringsClaim(claims map[string]any, name string) ([]string, error) {
	out := []string{}
	switch v := claims[name].(type) {
	case nil:
	case string:
		if v != "" {
			out = append(out, v)
		}
	case []string:
		for _, s := range v {
			if s != "" {
				out = append(out, s)
			}
		}
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, wrongType(name, e, "string elements")
			}
			if s != "" {
				out = append(out, s)
			}
		}
	default:
		return nil, wrongType(name, v, "string or array of strings")
	}
	return out, nil
}

// unixClaim returns a NumericDate claim as Unix seconds; absent is 0.
func unixClaim(claims map[string]any, name string) (int64, error) {
	v, ok := claims[name]
	if !ok || v == nil {
		return 0, nil
	}
	var f float64
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, nil
		}
		var err error
		if f, err = n.Float64(); err != nil {
			return 0, wrongType(name, v, "number")
		}
	case float64:
		f = n
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	default:
		return 0, wrongType(name, v, "number")
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, wrongType(name, v, "number in range")
	}
	return int64(f), nil
}

// attributes copies the configured claims. Scalars and arrays of scalars
// are copied; objects are refused because policies compare attributes with
// record fields, and a structure where a scalar was expected would make
// such comparisons silently false or, worse, match on a nested value.
func attributes(claims map[string]any, names map[string]string) (map[string]any, error) {
	out := make(map[string]any, len(names))
	for attr, claim := range names {
		v, ok := claims[claim]
		if !ok || v == nil {
			continue
		}
		if arr, isArr := v.([]any); isArr {
			cp := make([]any, len(arr))
			for i, e := range arr {
				if !isScalar(e) {
					return nil, wrongType(claim, e, "scalar array elements")
				}
				cp[i] = e
			}
			out[attr] = cp
			continue
		}
		if arr, isArr := v.([]string); isArr {
			// Converted so that consumers see one array type whatever
			// decoded the claims.
			cp := make([]any, len(arr))
			for i, e := range arr {
				cp[i] = e
			}
			out[attr] = cp
			continue
		}
		if !isScalar(v) {
			return nil, wrongType(claim, v, "string, number, bool or array")
		}
		out[attr] = v
	}
	return out, nil
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, bool, json.Number, float64, float32, int, int32, int64, uint, uint32, uint64:
		return true
	}
	return false
}
