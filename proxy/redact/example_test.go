package redact_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
	"github.com/crmgate/crmgate/proxy/redact"
)

// mine is a record rule: only records assigned to u-17 may be seen.
type mine struct{}

func (mine) Fields() []string { return []string{"assignedUserId"} }

func (mine) Check(rec map[string]any) (policy.RecordDecision, error) {
	return policy.RecordDecision{Allow: rec["assignedUserId"] == "u-17"}, nil
}

func Example() {
	plan := redact.Plan{
		Shape: profile.Shape{
			ListPath:   []string{"list"},
			FieldsPath: []string{},
			IDField:    "id",
			TotalPaths: [][]string{{"total"}},
		},
		Hidden: []string{"creditLimit"},
		Masked: map[string]string{"phoneNumber": policy.MaskLast4},
		Record: mine{},
	}
	c, err := plan.Compile()
	if err != nil {
		fmt.Println(err)
		return
	}
	body := `{"total":2,"list":[
		{"id":"a1","name":"Acme","phoneNumber":"+1 555 123 4567","creditLimit":5000,"assignedUserId":"u-17"},
		{"id":"a2","name":"Beta","phoneNumber":"+1 555 987 6543","creditLimit":9000,"assignedUserId":"u-99"}]}`
	st, err := c.Transform(os.Stdout, strings.NewReader(body), redact.ModeList)
	fmt.Println()
	fmt.Printf("returned %d, filtered %d, redacted %d, ids %v, err %v\n", st.Returned, st.Filtered, st.Redacted, st.IDs, err)
	// Output:
	// {"list":[{"id":"a1","name":"Acme","phoneNumber":"***********4567","assignedUserId":"u-17"}],"total":-2}
	// returned 1, filtered 1, redacted 2, ids [a1], err <nil>
}
