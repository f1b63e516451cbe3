package audit_test

import (
	"context"
	"os"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/audit"
)

// A decision logged to stdout with a body field erased from the input.
func ExampleNew() {
	l := audit.New(audit.NewZapSink(zapcore.AddSync(os.Stdout)), audit.Options{
		MaskPaths: []string{"/input/resource/body/password"},
	}, nil, nil)

	l.Log(&audit.Event{
		DecisionID: "d-1",
		Timestamp:  time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Path:       "crmgate",
		Input: &policy.Input{
			Subject:  &policy.Subject{ID: "alice", Roles: []string{"sales"}},
			Resource: policy.Resource{Module: "Users", Action: "update", Body: map[string]any{"password": "hunter2"}},
		},
		SubjectID: "alice",
		Roles:     []string{"sales"},
		Module:    "Users",
		Action:    "update",
		Outcome:   "deny",
		Status:    403,
	})
	_ = l.Close(context.Background())
	// Output:
	// {"level":"info","timestamp":"2026-11-23T12:00:00Z","msg":"decision","decision_id":"d-1","path":"crmgate","input":{"subject":{"id":"alice","roles":["sales"],"groups":null,"teams":null,"attributes":null,"mfa":false,"amr":null,"auth":""},"request":{"id":"","method":"","path":"","time":"0001-01-01T00:00:00Z"},"resource":{"module":"Users","action":"update","body":{}}},"erased":["/input/resource/body/password"],"subject":{"id":"alice","roles":["sales"]},"module":"Users","action":"update","outcome":"deny","status":403,"records_returned":0,"records_filtered":0,"fields_redacted":0,"latency_ns":0}
}
