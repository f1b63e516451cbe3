package policy

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestDecisionCacheIsBoundedByWhatThePolicyReads(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		policy string
		cached bool
		paths  string
	}{
		"plain refs": {
			policy: "allow if input.subject.attributes.crm_user_id == input.resource.body[\"owner\"]",
			cached: true,
			paths:  "input.resource.body.owner input.subject.attributes.crm_user_id",
		},
		"dynamic key": {
			policy: "allow if {\n\tsome f in input.resource.fields\n\tinput.resource.body[f]\n}",
			cached: true,
			paths:  "input.resource.body input.resource.fields",
		},
		"helper via ref head": {
			policy: "allow := true\n\nmasked_fields[f] := \"last4\" if {\n\tsecret\n\tsome f in [\"phone\"]\n}\n\nsecret if input.subject.attributes.tier == \"low\"",
			cached: true,
			paths:  "input.subject.attributes.tier",
		},
		"clock":        {policy: "allow if time.now_ns() > 0"},
		"random":       {policy: "allow if rand.intn(\"x\", 10) > 0"},
		"with":         {policy: "allow if helper with input.subject.roles as [\"admin\"]\n\nhelper if \"admin\" in input.subject.roles"},
		"bare input":   {policy: "allow if count(input) > 0"},
		"walk input":   {policy: "allow if {\n\twalk(input, [p, v])\n\tv == \"admin\"\n\tcount(p) > 0\n}"},
		"input to fn":  {policy: "allow if f(input)\n\nf(x) if x.subject.id == \"sam\""},
		"input by var": {policy: "allow if {\n\tsome k in [\"subject\"]\n\tinput[k].id == \"sam\"\n}"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := load(t, map[string]string{"crmgate.rego": "package crmgate\n\n" + tt.policy + "\n"})
			c := e.state.Load()
			if got := c.cache != nil; got != tt.cached {
				t.Fatalf("cached = %v, want %v", got, tt.cached)
			}
			if c.cache != nil {
				if got := strings.Join(c.cache.names, " "); got != tt.paths {
					t.Errorf("paths = %q, want %q", got, tt.paths)
				}
			}
		})
	}
}

// TestDecisionCacheCannotBeFooled tries to get a cached decision for an
// input that differs in something the policy reads, and to poison the
// cache through a returned Decision.
func TestDecisionCacheCannotBeFooled(t *testing.T) {
	t.Parallel()
	e := load(t, map[string]string{"crmgate.rego": `package crmgate

allow if {
	"sales" in input.subject.roles
	not blocked
}

blocked if input.resource.body.owner != input.subject.attributes.crm_user_id

masked_fields[f] := "last4" if {
	low_tier
	some f in ["phone"]
}

low_tier if input.subject.attributes.tier == "low"

hidden_fields contains "cost"
`})
	if e.state.Load().cache == nil {
		t.Fatal("policy unexpectedly not cached")
	}
	ctx := context.Background()
	decide := func(roles []string, attrs map[string]any, body map[string]any) Decision {
		t.Helper()
		d, err := e.Decide(ctx, &Input{
			Subject:  &Subject{ID: "x", Roles: roles, Attributes: attrs},
			Resource: Resource{Module: "Accounts", Action: "update", Body: body},
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	me := map[string]any{"crm_user_id": "u-1", "tier": "low"}
	for range 3 { // first evaluates, later ones hit the cache
		if d := decide([]string{"sales"}, me, map[string]any{"owner": "u-1"}); !d.Allow || d.MaskedFields["phone"] != MaskLast4 {
			t.Fatalf("own record: %+v", d)
		}
		if d := decide([]string{"sales"}, me, map[string]any{"owner": "u-2"}); d.Allow {
			t.Error("body owner changed but the cached allow was reused")
		}
		if d := decide([]string{"customer"}, me, map[string]any{"owner": "u-1"}); d.Allow {
			t.Error("roles changed but the cached allow was reused")
		}
		if d := decide([]string{"sales"}, map[string]any{"crm_user_id": "u-1", "tier": "high"}, map[string]any{"owner": "u-1"}); len(d.MaskedFields) != 0 {
			t.Error("tier read only by a masked_fields helper changed but the cached masks were reused")
		}
	}
	d := decide([]string{"sales"}, me, map[string]any{"owner": "u-1"})
	d.HiddenFields[0] = "nothing"
	d.MaskedFields["phone"] = MaskHash
	delete(d.MaskedFields, "phone")
	again := decide([]string{"sales"}, me, map[string]any{"owner": "u-1"})
	if !slices.Equal(again.HiddenFields, []string{"cost"}) || again.MaskedFields["phone"] != MaskLast4 {
		t.Errorf("changing a returned decision changed the cache: %+v", again)
	}
}

func TestDecisionCacheIsPerRevision(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := loadDir(t, dir, "package crmgate\n\nallow if \"sales\" in input.subject.roles\n")
	in := salesInput()
	if d, _ := e.Decide(context.Background(), in); !d.Allow {
		t.Fatal("want allow")
	}
	rewrite(t, dir, "package crmgate\n\nallow := false\n")
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Decide(context.Background(), in); d.Allow {
		t.Error("decision cached across a reload")
	}
}

// TestInputViewFindsWhatTheInputHolds holds the cache keys' lookups to the
// input document evaluations see: a path the view answered differently
// would let two inputs the policy tells apart share a cached decision.
func TestInputViewFindsWhatTheInputHolds(t *testing.T) {
	t.Parallel()
	subject := &Subject{ID: "sam", Roles: []string{"sales"}, Teams: []string{"store-1"}, MFA: true,
		Attributes: map[string]any{"crm_user_id": "u-1", "tier": 2}}
	inputs := map[string]*Input{
		"read": {Subject: subject,
			Request:  Request{ID: "r1", Method: "GET", Path: "/Api/V8/module/Accounts/a-1", Query: map[string][]string{"page[size]": {"50"}}, RemoteIP: "10.0.0.1"},
			Resource: Resource{Module: "Accounts", Action: "read", ID: "a-1"}},
		"list without id or query": {Subject: subject,
			Request:  Request{Method: "GET", Path: "/Api/V8/module/Accounts"},
			Resource: Resource{Module: "Accounts", Action: "list"}},
		"empty module and action": {Subject: subject},
		"write": {Subject: subject,
			Request:  Request{Method: "PATCH", Path: "/Api/V8/module"},
			Resource: Resource{Module: "Accounts", Action: "update", ID: "a-1", Fields: []string{"name", "owner"}, Body: map[string]any{"name": "x", "owner": "u-2", "n": 3.5}}},
	}
	var paths []string
	for _, p := range []string{
		"subject", "subject.id", "subject.roles", "subject.mfa", "subject.attributes", "subject.attributes.crm_user_id", "subject.attributes.nope", "subject.email",
		"request", "request.method", "request.path", "request.query", "request.remote_ip", "request.id", "request.time",
		"resource", "resource.module", "resource.action", "resource.id", "resource.fields", "resource.body", "resource.body.owner", "resource.body.nope", "resource.nope",
		"record", "record.owner", "nope",
	} {
		paths = append(paths, "input."+p)
	}
	paths = append(paths, `input.request.query["page[size]"]`, `input.resource.module.x`)
	for name, in := range inputs {
		full, err := inputValue(in, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range paths {
			ref := ast.MustParseRef(ps)
			want, err := full.Find(ref[1:])
			if err != nil {
				want = nil
			}
			view, err := newInputView(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := view.find(ref)
			if err != nil {
				t.Fatalf("%s: %s: %v", name, ps, err)
			}
			switch {
			case want == nil && got == nil:
			case want == nil || got == nil || want.Compare(got) != 0:
				t.Errorf("%s: %s = %v, want %v", name, ps, got, want)
			}
			// The key's text for the path is the built value's text.
			text, found, err := view.appendText([]byte("prefix"), ref)
			if err != nil {
				t.Fatalf("%s: %s: %v", name, ps, err)
			}
			wantText := "prefix"
			if want != nil {
				wantText += want.String()
			}
			if found != (want != nil) || string(text) != wantText {
				t.Errorf("%s: %s text = %q (found %v), want %q", name, ps, text, found, wantText)
			}
		}
	}
}
