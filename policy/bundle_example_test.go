package policy_test

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/crmgate/crmgate/policy"
)

// A bundle, as an OPA bundle server serves it, becomes a Source; its
// manifest revision becomes the revision every decision carries.
func ExampleReadBundle() {
	var tarball bytes.Buffer
	err := bundle.NewWriter(&tarball).DisableFormat(true).Write(bundle.Bundle{
		Manifest: bundle.Manifest{Revision: "2026-11-23.1"},
		Modules: []bundle.ModuleFile{{
			URL:  "/crmgate/policy.rego",
			Path: "/crmgate/policy.rego",
			Raw:  []byte("package crmgate\n\nallow if {\n\tsome r in input.subject.roles\n\tr in data.crmgate_data.listers\n}\n"),
		}},
		Data: map[string]any{"crmgate_data": map[string]any{"listers": []any{"sales"}}},
	})
	if err != nil {
		panic(err)
	}

	src, err := policy.ReadBundle(&tarball, 0)
	if err != nil {
		panic(err)
	}
	engine, err := policy.Load(context.Background(), policy.Options{Source: src})
	if err != nil {
		panic(err)
	}
	d, err := engine.Decide(context.Background(), &policy.Input{
		Subject:  &policy.Subject{ID: "alice", Roles: []string{"sales"}},
		Request:  policy.Request{ID: "req-1", Method: "GET", Path: "/Api/V8/module/Accounts", Time: time.Unix(0, 0).UTC()},
		Resource: policy.Resource{CRM: "suitecrm8", Module: "Accounts", Action: "list"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Allow, d.Revision)
	// Output: true 2026-11-23.1
}
