package session

import (
	"reflect"
	"testing"
	"time"

	"github.com/crmgate/crmgate/policy"
)

// TestCloneSubjectCopiesEveryField fails when policy.Subject gains a field
// cloneSubject does not copy: a session would silently lose it.
func TestCloneSubjectCopiesEveryField(t *testing.T) {
	s := &policy.Subject{}
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if !v.Type().Field(i).IsExported() {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString("x" + v.Type().Field(i).Name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"a", v.Type().Field(i).Name}))
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]any{"k": map[string]any{"deep": []any{"v"}}}))
		default:
			t.Fatalf("field %s of kind %s: teach this test and cloneSubject about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	c := cloneSubject(s)
	cv := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		if !reflect.DeepEqual(v.Field(i).Interface(), cv.Field(i).Interface()) {
			t.Errorf("%s = %v, want %v", v.Type().Field(i).Name, cv.Field(i).Interface(), v.Field(i).Interface())
		}
	}
	// Changing the copy anywhere leaves the original alone.
	c.Roles[0] = "admin"
	c.Attributes["k"].(map[string]any)["deep"].([]any)[0] = "changed"
	c.Attributes["new"] = true
	if s.Roles[0] != "a" || s.Attributes["k"].(map[string]any)["deep"].([]any)[0] != "v" || len(s.Attributes) != 1 {
		t.Fatalf("original changed through the copy: %+v", s)
	}
}

// TestDecodeMemoFollowsTheBytes: the memo answers only for the very bytes
// it decoded; a changed record under the same hash is decoded anew, and a
// caller changing what it got changes nothing for the next caller.
func TestDecodeMemoFollowsTheBytes(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	mk := func(role string) []byte {
		s := &Session{ID: "memo-test-id", Subject: &policy.Subject{ID: "alice", Roles: []string{role}, Auth: "session",
			Attributes: map[string]any{"crm_user_id": "u-1"}}, CreatedAt: now, AMR: []string{"pwd"}}
		b, err := encode("test", s, time.Hour, false)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const hash = "memo-test-hash"
	sales, admin := mk("sales"), mk("admin")
	a, err := decode("get", hash, sales, now)
	if err != nil {
		t.Fatal(err)
	}
	a.Subject.Roles[0] = "admin"
	a.Subject.Attributes["crm_user_id"] = "u-2"
	a.AMR[0] = "otp"
	b, err := decode("get", hash, sales, now)
	if err != nil {
		t.Fatal(err)
	}
	if b.Subject.Roles[0] != "sales" || b.Subject.Attributes["crm_user_id"] != "u-1" || b.AMR[0] != "pwd" {
		t.Fatalf("second decode saw the first caller's changes: %+v %+v", b.Subject, b.AMR)
	}
	if b.Subject == a.Subject {
		t.Fatal("two decodes share a Subject")
	}
	c, err := decode("get", hash, admin, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.Roles[0] != "admin" {
		t.Fatalf("changed record under the same hash answered from the memo: %v", c.Subject.Roles)
	}
	// A record that fails to decode is never remembered as good.
	if _, err := decode("get", hash, []byte(`{"v":1}`), now); err == nil {
		t.Fatal("record without subject decoded")
	}
}
