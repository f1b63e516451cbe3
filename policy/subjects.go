package policy

import (
	"reflect"
	"slices"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
)

// Clone returns a copy of s that shares nothing with it: every slice, and
// the attributes' maps and slices, are copied. The copy builds its own Rego
// value, so it may be changed before it is handed to an Engine.
func (s *Subject) Clone() *Subject {
	return &Subject{
		ID:         s.ID,
		Email:      s.Email,
		Name:       s.Name,
		Roles:      slices.Clone(s.Roles),
		Groups:     slices.Clone(s.Groups),
		Teams:      slices.Clone(s.Teams),
		Attributes: cloneJSON(s.Attributes).(map[string]any),
		MFA:        s.MFA,
		AMR:        slices.Clone(s.AMR),
		ACR:        s.ACR,
		AuthTime:   s.AuthTime,
		Auth:       s.Auth,
	}
}

// cloneJSON copies a value as encoding/json decodes it: maps and slices
// anew, scalars (immutable) as they are.
func cloneJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return v
		}
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = cloneJSON(x)
		}
		return out
	case []any:
		if v == nil {
			return v
		}
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = cloneJSON(x)
		}
		return out
	}
	return v
}

// sameSubject reports whether a and b would build the same Rego value:
// every field equal, attributes compared deeply and by type.
func sameSubject(a, b *Subject) bool {
	return a.ID == b.ID && a.Email == b.Email && a.Name == b.Name &&
		slices.Equal(a.Roles, b.Roles) && slices.Equal(a.Groups, b.Groups) && slices.Equal(a.Teams, b.Teams) &&
		a.MFA == b.MFA && slices.Equal(a.AMR, b.AMR) && a.ACR == b.ACR && a.AuthTime == b.AuthTime && a.Auth == b.Auth &&
		len(a.Attributes) == len(b.Attributes) && reflect.DeepEqual(a.Attributes, b.Attributes)
}

// builtSubjects remembers, per subject id, the last subject whose Rego value
// was built, as a private copy, with that value. A browser session hands
// the engine a new copy of the same stored subject on every request (the
// session store never shares one between callers), and building its value
// again was a twentieth of such a request's CPU. A Subject reuses a value
// only when, at its first evaluation, it equals the remembered copy.
var builtSubjects = func() *lru.Cache[string, subjectValue] {
	c, err := lru.New[string, subjectValue](maxBuiltSubjects)
	if err != nil {
		panic(err) // a constant, positive size
	}
	return c
}()

// maxBuiltSubjects bounds the memory: the least recently used go first.
const maxBuiltSubjects = 4096

type subjectValue struct {
	subject *Subject // a private copy, never handed out
	value   ast.Value
}

// builtValue returns the value built for a subject equal to s, if any.
func builtValue(s *Subject) (ast.Value, bool) {
	e, ok := builtSubjects.Get(s.ID)
	if !ok || !sameSubject(e.subject, s) {
		return nil, false
	}
	return e.value, true
}

// rememberValue keeps v as the value of subjects equal to s.
func rememberValue(s *Subject, v ast.Value) {
	builtSubjects.Add(s.ID, subjectValue{subject: s.Clone(), value: v})
}
