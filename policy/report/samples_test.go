package report_test

import (
	"strings"
	"testing"

	"github.com/crmgate/crmgate/policy/report"
)

func TestParseSamples(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		wantErr string
		check   func(t *testing.T, s report.Samples)
	}{
		{name: "yaml", in: "sales:\n  teams: [store-12]\n  attributes:\n    crm_user_id: u-1\n    level: 3\n    tags: {a: [1, x]}\n",
			check: func(t *testing.T, s report.Samples) {
				if got := s["sales"].Attributes["crm_user_id"]; got != "u-1" {
					t.Errorf("crm_user_id = %v", got)
				}
				if s["sales"].ID != "" {
					t.Errorf("id = %q, want empty (defaulted by the report)", s["sales"].ID)
				}
			}},
		{name: "json", in: `{"customer": {"id": "c", "attributes": {"account_id": "acc-9"}}}`,
			check: func(t *testing.T, s report.Samples) {
				if s["customer"].ID != "c" || s["customer"].Attributes["account_id"] != "acc-9" {
					t.Errorf("customer = %+v", s["customer"])
				}
			}},
		// A misspelled key must not quietly produce a subject without
		// attributes, which would report the role as denied everywhere.
		{name: "misspelled key", in: "sales:\n  atributes: {crm_user_id: u-1}\n", wantErr: "atributes"},
		{name: "roles cannot be set", in: "sales:\n  roles: [admin]\n", wantErr: "roles"},
		{name: "nested non-string key", in: "sales:\n  attributes: {a: {1: x}}\n", wantErr: "not a string"},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "no roles", in: "{}", wantErr: "no roles"},
		{name: "empty role", in: `{"": {}}`, wantErr: "empty role"},
		{name: "two documents", in: "sales: {}\n---\nadmin: {}\n", wantErr: "more than one"},
		{name: "not a mapping", in: "[1, 2]", wantErr: "parse samples"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := report.ParseSamples(strings.NewReader(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, s)
		})
	}
	t.Run("too large", func(t *testing.T) {
		_, err := report.ParseSamples(strings.NewReader("x: {}\n" + strings.Repeat("#", 2<<20)))
		if err == nil || !strings.Contains(err.Error(), "larger") {
			t.Fatalf("err = %v", err)
		}
	})
}
