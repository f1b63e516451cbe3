// Package report answers auditors' and security teams' questions from the
// policy itself: who can do what to which CRM module (the access matrix),
// what a policy change grants or removes (the diff of two matrices), and who
// has not been seen for a while (the dormant-user report).
//
// The access matrix is never read from the Rego source: it is produced by
// evaluating the loaded policy (Engine.Decide) for one sample subject per
// role, for every module and action, once without and once with MFA. A
// report therefore shows what the proxy would decide, including the effect
// of helper rules, data documents and defaults. It shows module-level
// decisions only: which records of a module a role reaches is decided per
// record by record_allow and is not part of the matrix.
//
// The package knows nothing about HTTP or the proxy; callers pass the module
// list (from the CRM profile) and the last-seen times (from the session
// store) in.
package report

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crmgate/crmgate/policy"
)

// Decider is what the access report needs from the policy engine.
type Decider interface {
	Decide(ctx context.Context, in *policy.Input) (policy.Decision, error)
	Revision() string
}

// DefaultActions are the actions the built-in profiles produce, in the order
// reports show them.
var DefaultActions = []string{
	policy.ActionList, policy.ActionRead, policy.ActionCreate, policy.ActionUpdate,
	policy.ActionDelete, policy.ActionExport, policy.ActionRelate,
}

// AccessOptions configure Access. Engine, Roles and Modules are required.
type AccessOptions struct {
	Engine Decider
	// Roles are the crmgate roles to report on; duplicates are dropped and
	// the report lists them sorted.
	Roles []string
	// Modules are the CRM modules to evaluate, in the order the report
	// shows them (the profile's order).
	Modules []string
	// Actions default to DefaultActions.
	Actions []string
	// Samples give each role's sample subject; nil means DefaultSamples. A
	// role without a sample is evaluated as a subject holding only that
	// role, with no teams or attributes.
	Samples Samples
	// Profile names the CRM profile, for the report's header.
	Profile string
	// Time is input.request.time of every evaluation. The zero value means
	// a fixed instant (ReportTime), so the same policy always produces the
	// same report.
	Time time.Time
	// RemoteIP is input.request.remote_ip of every evaluation. Empty sends
	// none, so rules that admit only some networks (the reference policy's
	// admins) deny.
	RemoteIP string
}

// ReportTime is the request time of evaluations when AccessOptions.Time is
// zero. A policy that depends on the time of day is reported as of this
// instant, which keeps reports reproducible.
var ReportTime = time.Date(2026, time.January, 5, 12, 0, 0, 0, time.UTC)

// Access is an evaluated role × module × action matrix.
type Access struct {
	// Revision is the policy revision that was evaluated.
	Revision string   `json:"revision"`
	Profile  string   `json:"profile,omitempty"`
	Roles    []string `json:"roles"`
	Actions  []string `json:"actions"`
	// Samples are the subjects that were evaluated, by role.
	Samples Samples `json:"samples"`
	// Modules are the modules in which at least one role may do something
	// (with or without MFA), in the order of AccessOptions.Modules.
	Modules []ModuleAccess `json:"modules"`
	// Omitted counts modules left out because no role may do anything in
	// them.
	Omitted int `json:"omitted_modules"`
}

// ModuleAccess is one module's rows: only roles that may do something in it.
type ModuleAccess struct {
	Module string       `json:"module"`
	Roles  []RoleAccess `json:"roles"`
}

// RoleAccess is what one role may do in one module.
type RoleAccess struct {
	Role string `json:"role"`
	// Cells has one entry per action, in the order of Access.Actions.
	Cells []Cell `json:"cells"`
	// Fields are the field rules that apply to the role in the module.
	Fields Fields `json:"fields"`
}

// Cell is one role × module × action outcome, evaluated with and without
// MFA.
type Cell struct {
	Action string `json:"action"`
	// Allow is the outcome for the sample subject without MFA: a policy
	// whose require_mfa is true steps such a subject up, which is not an
	// allow.
	Allow bool `json:"allow"`
	// AllowMFA is the outcome for the same subject with MFA.
	AllowMFA bool `json:"allow_mfa"`
}

// String is the cell as reports print it: "allow", "deny", "MFA" (allowed
// only with MFA) or "no-MFA only" (a policy that, oddly, grants less with
// MFA than without).
func (c Cell) String() string {
	switch {
	case c.Allow && c.AllowMFA:
		return "allow"
	case c.AllowMFA:
		return "MFA"
	case c.Allow:
		return "no-MFA only"
	}
	return "deny"
}

// granted reports whether the cell allows in either MFA state.
func (c Cell) granted() bool { return c.Allow || c.AllowMFA }

// Fields are a role's field rules in a module. Hidden, Masked and the
// allow-list come from the decision for reading (the read action, else
// list, else export: the first the role may perform), ReadOnly from the
// decision for writing (update, else create), each under the MFA state in
// which the role is granted the action (without MFA when both are).
type Fields struct {
	Hidden []string `json:"hidden,omitempty"`
	// Masked maps a field to its mask style.
	Masked map[string]string `json:"masked,omitempty"`
	// Visible is the allow-list; it applies only when VisibleDefined.
	Visible        []string `json:"visible,omitempty"`
	VisibleDefined bool     `json:"visible_defined,omitempty"`
	ReadOnly       []string `json:"readonly,omitempty"`
}

func (f Fields) empty() bool {
	return len(f.Hidden) == 0 && len(f.Masked) == 0 && !f.VisibleDefined && len(f.ReadOnly) == 0
}

var (
	viewActions  = []string{policy.ActionRead, policy.ActionList, policy.ActionExport}
	writeActions = []string{policy.ActionUpdate, policy.ActionCreate}
)

// ErrNoRoles means there is no role to report on: the configuration names
// none in identity.roles or metrics.roles and none was given.
var ErrNoRoles = errors.New("no roles to report on")

// BuildAccess evaluates the policy for every role, module and action. Any
// evaluation error fails the whole report: a cell that could not be decided
// is not shown as a denial.
func BuildAccess(ctx context.Context, o AccessOptions) (*Access, error) {
	const op = "access report"
	switch {
	case o.Engine == nil:
		return nil, fmt.Errorf("%s: no policy engine", op)
	case len(o.Modules) == 0:
		return nil, fmt.Errorf("%s: no modules", op)
	}
	roles := uniqueSorted(o.Roles)
	if len(roles) == 0 {
		return nil, fmt.Errorf("%s: %w", op, ErrNoRoles)
	}
	actions := o.Actions
	if len(actions) == 0 {
		actions = DefaultActions
	}
	samples := o.Samples
	if samples == nil {
		samples = DefaultSamples()
	}
	at := o.Time
	if at.IsZero() {
		at = ReportTime
	}
	ev := evaluator{engine: o.Engine, at: at.UTC(), remoteIP: o.RemoteIP, revision: o.Engine.Revision()}
	a := &Access{
		Revision: ev.revision,
		Profile:  o.Profile,
		Roles:    roles,
		Actions:  slices.Clone(actions),
		Samples:  Samples{},
	}
	subjects := make(map[string][2]*policy.Subject, len(roles))
	for _, role := range roles {
		s := samples.subjectFor(role)
		a.Samples[role] = s
		subjects[role] = [2]*policy.Subject{s.subject(role, false), s.subject(role, true)}
	}
	// Modules are evaluated in parallel (a report is thousands of
	// evaluations) and collected in order, so the output does not depend
	// on scheduling.
	results := make([]ModuleAccess, len(o.Modules))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		next     atomic.Int64
	)
	for range min(runtime.GOMAXPROCS(0), len(o.Modules)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(o.Modules) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				ma := ModuleAccess{Module: o.Modules[i]}
				for _, role := range roles {
					ra, err := ev.role(ctx, role, ma.Module, actions, subjects[role])
					if err != nil {
						errOnce.Do(func() { firstErr = err; cancel() })
						return
					}
					if ra != nil {
						ma.Roles = append(ma.Roles, *ra)
					}
				}
				results[i] = ma
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("%s: %w", op, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	for _, ma := range results {
		if len(ma.Roles) == 0 {
			a.Omitted++
			continue
		}
		a.Modules = append(a.Modules, ma)
	}
	if ev.revision != o.Engine.Revision() {
		// A reload in the middle would mix two policies in one report.
		return nil, fmt.Errorf("%s: policy changed from revision %s to %s while the report was built", op, ev.revision, o.Engine.Revision())
	}
	return a, nil
}

type evaluator struct {
	engine   Decider
	at       time.Time
	remoteIP string
	revision string
}

// role evaluates one role in one module; nil when the role may do nothing.
func (ev evaluator) role(ctx context.Context, role, module string, actions []string, subj [2]*policy.Subject) (*RoleAccess, error) {
	ra := &RoleAccess{Role: role, Cells: make([]Cell, len(actions))}
	decisions := make(map[string]policy.Decision, len(actions))
	granted := false
	for i, action := range actions {
		var d [2]policy.Decision
		for mfa := range 2 {
			in := &policy.Input{
				Subject:  subj[mfa],
				Request:  policy.Request{ID: "report", Method: methodOf(action), Time: ev.at, RemoteIP: ev.remoteIP},
				Resource: policy.Resource{Module: module, Action: action},
			}
			var err error
			d[mfa], err = ev.engine.Decide(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("role %s, %s %s (mfa=%t): %w", role, action, module, mfa == 1, err)
			}
		}
		// The contract's order: require_mfa steps a subject without MFA up
		// whatever allow says.
		c := Cell{Action: action, Allow: d[0].Allow && !d[0].RequireMFA, AllowMFA: d[1].Allow}
		ra.Cells[i] = c
		switch {
		case c.Allow:
			decisions[action] = d[0]
		case c.AllowMFA:
			decisions[action] = d[1]
		}
		granted = granted || c.granted()
	}
	if !granted {
		return nil, nil
	}
	if d, ok := first(decisions, viewActions); ok {
		ra.Fields.Hidden = d.HiddenFields
		if len(d.MaskedFields) > 0 {
			ra.Fields.Masked = maps.Clone(d.MaskedFields)
		}
		ra.Fields.Visible, ra.Fields.VisibleDefined = d.VisibleFields, d.VisibleDefined
	}
	if d, ok := first(decisions, writeActions); ok {
		ra.Fields.ReadOnly = d.ReadonlyFields
	}
	return ra, nil
}

func first(decisions map[string]policy.Decision, order []string) (policy.Decision, bool) {
	for _, a := range order {
		if d, ok := decisions[a]; ok {
			return d, true
		}
	}
	return policy.Decision{}, false
}

// methodOf gives the HTTP method the built-in profiles use for an action,
// so a policy that looks at input.request.method sees a plausible request.
func methodOf(action string) string {
	switch action {
	case policy.ActionCreate, policy.ActionRelate:
		return "POST"
	case policy.ActionUpdate:
		return "PATCH"
	case policy.ActionDelete:
		return "DELETE"
	}
	return "GET"
}

func uniqueSorted(xs []string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if x != "" {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
