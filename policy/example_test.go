package policy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/rego"
)

// Load the reference policy and ask whether a salesperson may read a
// contact, and which fields crmgate must then mask.
func Example() {
	ctx := context.Background()
	engine, err := policy.Load(ctx, policy.Options{Source: policy.Source{FS: rego.FS}})
	if err != nil {
		fmt.Println(err)
		return
	}
	alice := &policy.Subject{
		ID:         "alice",
		Roles:      []string{"sales"},
		Teams:      []string{"store-12"},
		Attributes: map[string]any{"crm_user_id": "u-sales1"},
	}
	d, err := engine.Decide(ctx, &policy.Input{
		Subject: alice,
		// A Tuesday morning in Berlin: the reference policy lets staff
		// in during working hours only.
		Request:  policy.Request{Method: "GET", Path: "/api/v1/Contact/c-1", Time: time.Date(2026, 12, 8, 9, 30, 0, 0, time.UTC)},
		Resource: policy.Resource{CRM: "espocrm", Module: "Contact", ID: "c-1", Action: policy.ActionRead},
	})
	if err != nil {
		fmt.Println("deny:", err)
		return
	}
	fmt.Println("allow:", d.Allow)
	fmt.Println("phone:", d.MaskedFields["phoneNumber"])
	fmt.Println("email:", d.MaskedFields["emailAddress"])

	rd, err := engine.Record(ctx, &policy.Input{
		Subject:  alice,
		Resource: policy.Resource{CRM: "espocrm", Module: "Contact", Action: policy.ActionRead},
		Record:   map[string]any{"id": "c-1", "assignedUserId": "u-sales3"},
	})
	fmt.Println("record of another store:", rd.Allow, err)
	// Output:
	// allow: true
	// phone: last4
	// email: email
	// record of another store: false <nil>
}
