package policy

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// subjectCache is a Subject's input.subject value, built once and shared by
// every evaluation for that Subject. owner guards against a copied Subject
// (which may have been changed after copying) reusing its original's value.
type subjectCache struct {
	owner *Subject
	value ast.Value
}

// astValue returns the subject as a Rego value, building it on first use.
// Subjects are immutable once handed to the engine, so the value never goes
// stale; concurrent first uses may both build it, which is harmless.
func (s *Subject) astValue() (ast.Value, error) {
	if c, ok := s.cache.Load().(*subjectCache); ok && c.owner == s {
		return c.value, nil
	}
	v, ok := builtValue(s)
	if !ok {
		var err error
		if v, err = buildSubject(s); err != nil {
			return nil, err
		}
		rememberValue(s, v)
	}
	s.cache.Store(&subjectCache{owner: s, value: v})
	return v, nil
}

func buildSubject(s *Subject) (ast.Value, error) {
	attrs := ast.NewObject()
	if len(s.Attributes) > 0 {
		v, err := ast.InterfaceToValue(s.Attributes)
		if err != nil {
			return nil, fmt.Errorf("subject attributes: %w", err)
		}
		obj, ok := v.(ast.Object)
		if !ok {
			return nil, errors.New("subject attributes: not an object")
		}
		attrs = obj
	}
	// Absent lists are empty arrays rather than null so that policies can
	// write `"admin" in input.subject.roles` and count() without guards.
	pairs := [][2]*ast.Term{
		{key("id"), ast.StringTerm(s.ID)},
		{key("roles"), stringArray(s.Roles)},
		{key("groups"), stringArray(s.Groups)},
		{key("teams"), stringArray(s.Teams)},
		{key("attributes"), ast.NewTerm(attrs)},
		{key("mfa"), ast.InternedTerm(s.MFA)},
		{key("amr"), stringArray(s.AMR)},
		{key("auth"), ast.StringTerm(s.Auth)},
	}
	if s.Email != "" {
		pairs = append(pairs, [2]*ast.Term{key("email"), ast.StringTerm(s.Email)})
	}
	if s.Name != "" {
		pairs = append(pairs, [2]*ast.Term{key("name"), ast.StringTerm(s.Name)})
	}
	if s.ACR != "" {
		pairs = append(pairs, [2]*ast.Term{key("acr"), ast.StringTerm(s.ACR)})
	}
	if s.AuthTime != 0 {
		pairs = append(pairs, [2]*ast.Term{key("auth_time"), int64Term(s.AuthTime)})
	}
	return ast.NewObject(pairs...), nil
}

func stringArray(xs []string) *ast.Term {
	terms := make([]*ast.Term, len(xs))
	for i, x := range xs {
		terms[i] = ast.StringTerm(x)
	}
	return ast.ArrayTerm(terms...)
}

// inputValue builds the input document directly as a Rego value: no JSON
// round trip, and the subject part is shared.
func inputValue(in *Input, record bool) (ast.Value, error) {
	v, err := newInputView(in)
	if err != nil {
		return nil, err
	}
	return v.value(record)
}

// inputView is an Input whose Rego value is built part by part, as it is
// needed. Almost every decision and record filter comes from a cache whose
// key reads a few input paths (input.subject.roles, input.resource.module);
// building the whole input document for those lookups, twice a request, was
// a twentieth of the proxy's CPU under load.
type inputView struct {
	in       *Input
	subject  ast.Value
	request  ast.Value // nil until built
	resource ast.Value // nil until built
}

// newInputView checks what every evaluation needs, so that a cache hit
// fails exactly where building the input would have.
func newInputView(in *Input) (*inputView, error) {
	if in == nil {
		return nil, errors.New("no input")
	}
	if in.Subject == nil {
		return nil, errors.New("no subject")
	}
	subject, err := in.Subject.astValue()
	if err != nil {
		return nil, err
	}
	return &inputView{in: in, subject: subject}, nil
}

func (v *inputView) requestValue() (ast.Value, error) {
	if v.request == nil {
		r, err := requestValue(&v.in.Request)
		if err != nil {
			return nil, err
		}
		v.request = r
	}
	return v.request, nil
}

func (v *inputView) resourceValue() (ast.Value, error) {
	if v.resource == nil {
		r, err := resourceValue(&v.in.Resource)
		if err != nil {
			return nil, err
		}
		v.resource = r
	}
	return v.resource, nil
}

// appendText appends the canonical text of the value at p (see find) to
// buf; found is false when the value is undefined.
func (v *inputView) appendText(buf []byte, p ast.Ref) (_ []byte, found bool, err error) {
	if len(p) == 3 {
		if top, _ := p[1].Value.(ast.String); top == "resource" {
			// The members the reference policy's keys read, written
			// without building the resource object or boxing a value.
			r := &v.in.Resource
			switch name, _ := p[2].Value.(ast.String); name {
			case "module":
				return appendString(buf, r.Module), true, nil
			case "action":
				return appendString(buf, r.Action), true, nil
			case "crm":
				if r.CRM == "" {
					return buf, false, nil
				}
				return appendString(buf, r.CRM), true, nil
			case "id":
				if r.ID == "" {
					return buf, false, nil
				}
				return appendString(buf, r.ID), true, nil
			case "fields":
				if len(r.Fields) == 0 {
					return buf, false, nil
				}
			case "body":
				if len(r.Body) == 0 {
					return buf, false, nil
				}
			}
		}
	}
	x, err := v.find(p)
	if err != nil || x == nil {
		return buf, false, err
	}
	switch x := x.(type) {
	case ast.Boolean:
		// Boolean's AppendText allocates.
		return strconv.AppendBool(buf, bool(x)), true, nil
	case ast.String:
		return appendString(buf, string(x)), true, nil
	case encoding.TextAppender:
		// Handing buf to a method through an interface would move every
		// key's buffer to the heap; these values' own text is short.
		if t, err := x.AppendText(nil); err == nil {
			return append(buf, t...), true, nil
		}
	}
	return append(buf, x.String()...), true, nil
}

// appendString appends s as ast.String's text.
func appendString(buf []byte, s string) []byte {
	out, err := ast.String(s).AppendText(buf)
	if err != nil {
		return append(buf, ast.String(s).String()...)
	}
	return out
}

// find returns the value at p (a ref starting at input, whose second term
// is a string: see inputPaths) in the input without a record, or nil when
// it is undefined there. An error is a part of the input that cannot be
// built, which would fail the evaluation too.
func (v *inputView) find(p ast.Ref) (ast.Value, error) {
	top, _ := p[1].Value.(ast.String)
	var part ast.Value
	switch top {
	case "subject":
		part = v.subject
	case "resource":
		r, err := v.resourceValue()
		if err != nil {
			return nil, err
		}
		part = r
	case "request":
		r, err := v.requestValue()
		if err != nil {
			return nil, err
		}
		part = r
	default:
		return nil, nil
	}
	if len(p) == 2 {
		return part, nil
	}
	found, err := part.Find(p[2:])
	if err != nil {
		return nil, nil
	}
	return found, nil
}

// value is the whole input document, with in.Record when record is set.
func (v *inputView) value(record bool) (ast.Value, error) {
	in := v.in
	subject := v.subject
	request, err := v.requestValue()
	if err != nil {
		return nil, err
	}
	resource, err := v.resourceValue()
	if err != nil {
		return nil, err
	}
	pairs := make([][2]*ast.Term, 3, 4)
	pairs[0] = [2]*ast.Term{key("subject"), ast.NewTerm(subject)}
	pairs[1] = [2]*ast.Term{key("request"), ast.NewTerm(request)}
	pairs[2] = [2]*ast.Term{key("resource"), ast.NewTerm(resource)}
	if record {
		if in.Record == nil {
			return nil, errors.New("no record")
		}
		v, err := ast.InterfaceToValue(in.Record)
		if err != nil {
			return nil, fmt.Errorf("record: %w", err)
		}
		pairs = append(pairs, [2]*ast.Term{key("record"), ast.NewTerm(v)})
	}
	return ast.NewObject(pairs...), nil
}

func requestValue(r *Request) (ast.Value, error) {
	pairs := make([][2]*ast.Term, 3, 6)
	pairs[0] = [2]*ast.Term{key("id"), ast.StringTerm(r.ID)}
	pairs[1] = [2]*ast.Term{key("method"), ast.StringTerm(r.Method)}
	pairs[2] = [2]*ast.Term{key("path"), ast.StringTerm(r.Path)}
	if len(r.Query) > 0 {
		q := make([][2]*ast.Term, 0, len(r.Query))
		for k, vs := range r.Query {
			q = append(q, [2]*ast.Term{ast.StringTerm(k), stringArray(vs)})
		}
		pairs = append(pairs, [2]*ast.Term{key("query"), ast.ObjectTerm(q...)})
	}
	if r.RemoteIP != "" {
		pairs = append(pairs, [2]*ast.Term{key("remote_ip"), ast.StringTerm(r.RemoteIP)})
	}
	if !r.Time.IsZero() {
		pairs = append(pairs, [2]*ast.Term{key("time"), ast.StringTerm(r.Time.Format(time.RFC3339Nano))})
	}
	return ast.NewObject(pairs...), nil
}

func resourceValue(r *Resource) (ast.Value, error) {
	pairs := make([][2]*ast.Term, 2, 6)
	pairs[0] = [2]*ast.Term{key("module"), ast.StringTerm(r.Module)}
	pairs[1] = [2]*ast.Term{key("action"), ast.StringTerm(r.Action)}
	if r.CRM != "" {
		pairs = append(pairs, [2]*ast.Term{key("crm"), ast.StringTerm(r.CRM)})
	}
	if r.ID != "" {
		pairs = append(pairs, [2]*ast.Term{key("id"), ast.StringTerm(r.ID)})
	}
	if len(r.Fields) > 0 {
		pairs = append(pairs, [2]*ast.Term{key("fields"), stringArray(r.Fields)})
	}
	if len(r.Body) > 0 {
		v, err := ast.InterfaceToValue(r.Body)
		if err != nil {
			return nil, fmt.Errorf("resource body: %w", err)
		}
		pairs = append(pairs, [2]*ast.Term{key("body"), ast.NewTerm(v)})
	}
	return ast.NewObject(pairs...), nil
}

// int64Term keeps large numbers exact on 32-bit platforms too.
func int64Term(n int64) *ast.Term { return ast.NumberTerm(json.Number(strconv.FormatInt(n, 10))) }

// inputKeys are the input document's member names as terms, made once:
// ast.InternedTerm interns only a fixed set of strings and allocates a new
// term for any other, several dozen times a request.
var inputKeys = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, k := range []string{
		"subject", "request", "resource", "record",
		"id", "roles", "groups", "teams", "attributes", "mfa", "amr", "auth", "email", "name", "acr", "auth_time",
		"method", "path", "query", "remote_ip", "time",
		"crm", "module", "action", "fields", "body",
	} {
		m[k] = ast.StringTerm(k)
	}
	return m
}()

// key returns the shared term for an input member name.
func key(name string) *ast.Term {
	if t, ok := inputKeys[name]; ok {
		return t
	}
	return ast.StringTerm(name)
}
