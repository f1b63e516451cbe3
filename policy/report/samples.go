package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/crmgate/crmgate/policy"
)

// Sample is the subject the access report evaluates for one role. Policies
// usually grant a role only together with attributes (the reference policy
// needs crm_user_id for staff and account_id for customers), so a bare
// subject holding the role would be reported as denied everywhere.
//
// In a samples file (YAML or JSON) each top-level key is a role:
//
//	sales:
//	  id: sample-sales
//	  teams: [store-12]
//	  attributes: {crm_user_id: u-sales1}
//
// The subject's roles are always exactly the key's role, so each row shows
// that role alone; mfa, amr and auth are set by the report.
type Sample struct {
	// ID defaults to "sample-" + role.
	ID         string         `yaml:"id" json:"id"`
	Email      string         `yaml:"email" json:"email,omitempty"`
	Name       string         `yaml:"name" json:"name,omitempty"`
	Groups     []string       `yaml:"groups" json:"groups,omitempty"`
	Teams      []string       `yaml:"teams" json:"teams,omitempty"`
	Attributes map[string]any `yaml:"attributes" json:"attributes,omitempty"`
}

// Samples are sample subjects by role.
type Samples map[string]Sample

// DefaultSamples work with the reference policy (rego/) and its data:
//
//	customer           account_id acc-1, contact_id c-1
//	sales              crm_user_id u-sales1, team store-12
//	line_manager       crm_user_id u-mgr, team store-12
//	inventory_manager  crm_user_id u-inv, team warehouse
//	support            crm_user_id u-support, team helpdesk
//	admin              crm_user_id u-admin, team hq
//
// Any other role gets a subject with no attributes.
func DefaultSamples() Samples {
	return Samples{
		"customer":          {ID: "sample-customer", Attributes: map[string]any{"account_id": "acc-1", "contact_id": "c-1"}},
		"sales":             {ID: "sample-sales", Teams: []string{"store-12"}, Attributes: map[string]any{"crm_user_id": "u-sales1"}},
		"line_manager":      {ID: "sample-line_manager", Teams: []string{"store-12"}, Attributes: map[string]any{"crm_user_id": "u-mgr"}},
		"inventory_manager": {ID: "sample-inventory_manager", Teams: []string{"warehouse"}, Attributes: map[string]any{"crm_user_id": "u-inv"}},
		"support":           {ID: "sample-support", Teams: []string{"helpdesk"}, Attributes: map[string]any{"crm_user_id": "u-support"}},
		"admin":             {ID: "sample-admin", Teams: []string{"hq"}, Attributes: map[string]any{"crm_user_id": "u-admin"}},
	}
}

// maxSamplesFile bounds what ParseSamples reads; a samples file is a few
// lines per role.
const maxSamplesFile = 1 << 20

// ParseSamples reads a samples file (YAML, or JSON, which is YAML). Unknown
// keys are errors, so a misspelled "atributes" cannot silently produce a
// subject without attributes.
func ParseSamples(r io.Reader) (Samples, error) {
	const op = "parse samples"
	data, err := io.ReadAll(io.LimitReader(r, maxSamplesFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if len(data) > maxSamplesFile {
		return nil, fmt.Errorf("%s: file larger than %d bytes", op, maxSamplesFile)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Samples
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file", op)
		}
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one document", op)
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("%s: no roles", op)
	}
	for _, role := range slices.Sorted(maps.Keys(s)) {
		if role == "" {
			return nil, fmt.Errorf("%s: empty role name", op)
		}
		// Build the subject once now so a value Rego cannot represent is
		// reported with its role rather than in the middle of the report.
		attrs, err := normalize(s[role].Attributes)
		if err != nil {
			return nil, fmt.Errorf("%s: role %s: attributes: %w", op, role, err)
		}
		sample := s[role]
		sample.Attributes = attrs
		s[role] = sample
	}
	return s, nil
}

// normalize turns YAML-decoded values into JSON-shaped ones (YAML allows
// non-string map keys, which input.subject.attributes cannot hold).
func normalize(attrs map[string]any) (map[string]any, error) {
	if attrs == nil {
		return nil, nil
	}
	v, err := normalizeValue(attrs)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

func normalizeValue(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalizeValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = n
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("key %v is not a string", k)
			}
			n, err := normalizeValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ks, err)
			}
			out[ks] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalizeValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = n
		}
		return out, nil
	case nil, string, bool, int, int64, uint64, float64:
		return x, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

// subjectFor returns the role's sample, or a bare one.
func (s Samples) subjectFor(role string) Sample {
	sample, ok := s[role]
	if !ok {
		sample = Sample{}
	}
	if sample.ID == "" {
		sample.ID = "sample-" + role
	}
	return sample
}

// subject builds a fresh policy subject. The engine caches a subject's Rego
// value on first use, so each MFA state gets its own Subject.
func (s Sample) subject(role string, mfa bool) *policy.Subject {
	amr := []string{"pwd"}
	if mfa {
		amr = []string{"pwd", "mfa"}
	}
	return &policy.Subject{
		ID:         s.ID,
		Email:      s.Email,
		Name:       s.Name,
		Roles:      []string{role},
		Groups:     slices.Clone(s.Groups),
		Teams:      slices.Clone(s.Teams),
		Attributes: maps.Clone(s.Attributes),
		MFA:        mfa,
		AMR:        amr,
		Auth:       "bearer",
	}
}
