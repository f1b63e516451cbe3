// Package policy is crmgate's decision point: it loads Rego policies and
// data, compiles and prepares them once per revision, and answers typed
// questions ("may this subject do this to this module/record, and which
// fields must be hidden, masked or kept read-only?") with the OPA v1 Go SDK.
//
// The package knows nothing about HTTP: the proxy turns requests into an
// Input and applies the Decision it gets back. Every way the policy can fail
// (compile error, undefined result, wrongly typed rule, evaluation error) is
// returned as an error, and callers deny on error.
package policy

import (
	"sync/atomic"
	"time"
)

// Subject is the authenticated caller, as the policy sees it under
// input.subject. Browser sessions and bearer tokens both produce one.
type Subject struct {
	// ID is the stable user identifier (the token's subject claim, or the
	// configured id claim).
	ID    string `json:"id"`
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
	// Roles are the crmgate roles after mapping IdP values through
	// identity.roles; Groups are the IdP's groups as asserted.
	Roles  []string `json:"roles"`
	Groups []string `json:"groups"`
	Teams  []string `json:"teams"`
	// Attributes are configured claims copied verbatim (for example
	// crm_user_id, account_id, manager_of).
	Attributes map[string]any `json:"attributes"`
	// MFA is true only when the IdP asserted evidence the config accepts as
	// multi-factor (amr values or acr values); the token's own say-so on
	// anything else does not count.
	MFA      bool     `json:"mfa"`
	AMR      []string `json:"amr"`
	ACR      string   `json:"acr,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	// Auth is how the subject authenticated: "session" or "bearer".
	Auth string `json:"auth"`

	// cache holds the subject's Rego input value (*subjectCache), built on
	// first evaluation. A Subject must not be modified once it has been
	// passed to an Engine: copy it (a copy builds its own value) instead.
	cache atomic.Value
}

// Request is the part of the HTTP request a policy may look at
// (input.request). Time is passed in rather than read by the policy so that a
// logged decision replays exactly.
type Request struct {
	ID       string              `json:"id"`
	Method   string              `json:"method"`
	Path     string              `json:"path"`
	Query    map[string][]string `json:"query,omitempty"`
	RemoteIP string              `json:"remote_ip,omitempty"`
	Time     time.Time           `json:"time"`
}

// Resource is the classified CRM target (input.resource).
type Resource struct {
	// CRM is the name of the CRM profile that classified the request
	// (suitecrm8, espocrm, ...): field names differ between CRMs, so a
	// policy reading a record's owner or account must know whose
	// spelling the record uses.
	CRM    string `json:"crm,omitempty"`
	Module string `json:"module"`
	ID     string `json:"id,omitempty"`
	Action string `json:"action"`
	// Fields and Body are set for writes: the names and values being
	// written, flattened out of the CRM's envelope.
	Fields []string       `json:"fields,omitempty"`
	Body   map[string]any `json:"body,omitempty"`
}

// Actions crmgate's built-in profiles produce. A profile may add more.
const (
	ActionList   = "list"
	ActionRead   = "read"
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
	ActionExport = "export"
	ActionRelate = "relate"
)

// Input is the whole input document of one evaluation.
type Input struct {
	Subject  *Subject `json:"subject"`
	Request  Request  `json:"request"`
	Resource Resource `json:"resource"`
	// Record is set only when the record rule is evaluated: the CRM's own
	// field names and values, flattened out of the envelope.
	Record map[string]any `json:"record,omitempty"`
}

// Mask styles accepted in masked_fields.
const (
	MaskLast4  = "last4"
	MaskEmail  = "email"
	MaskRedact = "redact"
	MaskHash   = "hash"
)

// Decision is the module-level answer for one request. Its zero value denies.
type Decision struct {
	Allow      bool     `json:"allow"`
	RequireMFA bool     `json:"require_mfa"`
	Reasons    []string `json:"reasons,omitempty"`
	// HiddenFields are removed from responses.
	HiddenFields []string `json:"hidden_fields,omitempty"`
	// MaskedFields maps a field to its mask style (see the Mask constants).
	MaskedFields map[string]string `json:"masked_fields,omitempty"`
	// VisibleFields is an allow-list; it applies only when VisibleDefined,
	// because an empty defined set means "nothing but the id".
	VisibleFields  []string `json:"visible_fields,omitempty"`
	VisibleDefined bool     `json:"visible_defined,omitempty"`
	// ReadonlyFields may not be written.
	ReadonlyFields []string `json:"readonly_fields,omitempty"`
	// ReadBudget caps the records the subject may read per window; nil
	// when the policy sets none (no cap).
	ReadBudget *ReadBudget `json:"read_budget,omitempty"`
	// Revision identifies the policy that produced the decision.
	Revision string `json:"revision"`
	// Duration is the evaluation time, for metrics and the decision log.
	Duration time.Duration `json:"-"`
}

// ReadBudget is the read_budget rule: at most Records records leave
// crmgate for the subject in any window of Per, counted across replicas.
type ReadBudget struct {
	Records int64         `json:"records"`
	Per     time.Duration `json:"per"`
}

// RecordDecision is the record rule's answer for one record.
type RecordDecision struct {
	Allow bool `json:"allow"`
	// HiddenFields are extra fields hidden for this record only.
	HiddenFields []string `json:"hidden_fields,omitempty"`
}
