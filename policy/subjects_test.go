package policy

import (
	"context"
	"reflect"
	"testing"
)

// fillSubject sets every exported field of a Subject to a value derived
// from tag, failing on a field kind it does not know.
func fillSubject(t *testing.T, s *Subject, tag string) {
	t.Helper()
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(tag + sf.Name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{tag, sf.Name}))
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]any{"k": map[string]any{"deep": []any{tag}}}))
		default:
			t.Fatalf("field %s of kind %s: teach this test, Clone and sameSubject about it", sf.Name, f.Kind())
		}
	}
}

// TestSubjectCloneCopiesEveryField fails when Subject gains a field Clone
// does not copy, or shares with the original.
func TestSubjectCloneCopiesEveryField(t *testing.T) {
	s := &Subject{}
	fillSubject(t, s, "x")
	c := s.Clone()
	sv, cv := reflect.ValueOf(s).Elem(), reflect.ValueOf(c).Elem()
	for i := range sv.NumField() {
		if !sv.Type().Field(i).IsExported() {
			continue
		}
		if !reflect.DeepEqual(sv.Field(i).Interface(), cv.Field(i).Interface()) {
			t.Errorf("%s = %v, want %v", sv.Type().Field(i).Name, cv.Field(i).Interface(), sv.Field(i).Interface())
		}
	}
	c.Roles[0] = "admin"
	c.Attributes["k"].(map[string]any)["deep"].([]any)[0] = "changed"
	c.Attributes["new"] = true
	if s.Roles[0] != "x" || s.Attributes["k"].(map[string]any)["deep"].([]any)[0] != "x" || len(s.Attributes) != 1 {
		t.Fatalf("original changed through the copy: %+v", s)
	}
}

// TestSameSubjectSeesEveryField: a subject differing from the remembered
// one in any single field must not get its Rego value.
func TestSameSubjectSeesEveryField(t *testing.T) {
	base := &Subject{}
	fillSubject(t, base, "x")
	if !sameSubject(base, base.Clone()) {
		t.Fatal("a clone is not the same subject")
	}
	v := reflect.ValueOf(base).Elem()
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		other := base.Clone()
		f := reflect.ValueOf(other).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("y")
		case reflect.Bool:
			f.SetBool(false)
		case reflect.Int64:
			f.SetInt(99)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"x", sf.Name, "extra"}))
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]any{"k": map[string]any{"deep": []any{"y"}}}))
		}
		if sameSubject(base, other) {
			t.Errorf("subjects differing in %s are the same", sf.Name)
		}
	}
	// Attribute values of another type with the same text differ too.
	a, b := base.Clone(), base.Clone()
	a.Attributes["n"], b.Attributes["n"] = 17, "17"
	if sameSubject(a, b) {
		t.Error("attribute 17 and \"17\" are the same")
	}
}

// TestSubjectValueFollowsTheSubject: fresh copies of one subject share a
// built value, and a copy with one role changed is decided on its own.
func TestSubjectValueFollowsTheSubject(t *testing.T) {
	e := load(t, map[string]string{"crmgate.rego": "package crmgate\n\nallow if \"admin\" in input.subject.roles\n"})
	ctx := context.Background()
	stored := &Subject{ID: "subject-value-test", Roles: []string{"sales"}, Attributes: map[string]any{"crm_user_id": "u-1"}}
	for round := range 3 {
		s := stored.Clone()
		if round == 1 {
			s.Roles[0] = "admin"
		}
		d, err := e.Decide(ctx, &Input{Subject: s, Resource: Resource{Module: "Accounts", Action: ActionRead}})
		if err != nil {
			t.Fatal(err)
		}
		if d.Allow != (round == 1) {
			t.Fatalf("round %d: allow = %v with roles %v", round, d.Allow, s.Roles)
		}
	}
}
