package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/crmgate/crmgate/policy"
)

// mePath answers "who am I, and what may I do?" for the signed-in caller.
const mePath = ownPrefix + "me"

// meTTL bounds how long a subject's answer is reused: long enough that a
// page polling it costs one evaluation round, short enough that a policy or
// role change shows within a minute (a reload shows at once: the revision
// is part of the key).
const meTTL = 30 * time.Second

// meMaxEntries bounds the cache; a full cache is swept, then dropped.
const meMaxEntries = 4096

// meActions lists the standard actions first, in their usual order, then
// any other action the profile's routes produce.
var meActions = []string{
	policy.ActionList, policy.ActionRead, policy.ActionCreate, policy.ActionUpdate,
	policy.ActionDelete, policy.ActionExport, policy.ActionRelate,
}

// meAnswer is the /.crmgate/me document.
type meAnswer struct {
	Subject        meSubject  `json:"subject"`
	PolicyRevision string     `json:"policy_revision"`
	Modules        []meModule `json:"modules"`
}

// meSubject is the part of the subject shown back to its owner: not the
// attributes, which may hold internal ids the user has no need to see.
type meSubject struct {
	ID    string   `json:"id"`
	Roles []string `json:"roles"`
	Teams []string `json:"teams"`
	MFA   bool     `json:"mfa"`
	Auth  string   `json:"auth"`
}

type meModule struct {
	Module  string     `json:"module"`
	Actions []meAction `json:"actions"`
}

type meAction struct {
	Action string `json:"action"`
	// Allowed is true when the request would be let through now.
	Allowed bool `json:"allowed"`
	// MFARequired is true when the caller would be stepped up first.
	MFARequired bool     `json:"mfa_required,omitempty"`
	Reasons     []string `json:"reasons,omitempty"`
}

// meCache holds encoded answers by subject and policy revision. Its zero
// value is ready to use.
type meCache struct {
	mu      sync.Mutex
	entries map[string]meEntry
}

type meEntry struct {
	body    []byte
	expires time.Time
}

func (c *meCache) get(key string, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.body, true
}

func (c *meCache) put(key string, body []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]meEntry)
	}
	if len(c.entries) >= meMaxEntries {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= meMaxEntries {
			clear(c.entries)
		}
	}
	c.entries[key] = meEntry{body: body, expires: now.Add(meTTL)}
}

// serveMe authenticates the caller like any request and lists, per module
// of the profile, the actions the policy allows them and why. Every
// decision is a real evaluation for this subject; an evaluation error fails
// the whole answer rather than leaving an action out.
func (h *Handler) serveMe(x *exchange) error {
	if x.r.Method != http.MethodGet && x.r.Method != http.MethodHead {
		return &Problem{Status: http.StatusMethodNotAllowed, Kind: "method-not-allowed", Title: "Method not allowed",
			Detail: "Use GET.", Outcome: OutcomeDeny, Reason: "method not allowed"}
	}
	if err := h.authenticate(x); err != nil {
		return err
	}
	subj := x.input.Subject
	key, err := meKey(subj, h.o.Policy.Revision())
	if err != nil {
		return errPolicy(err)
	}
	now := h.o.Now()
	body, ok := h.me.get(key, now)
	if !ok {
		if body, err = h.meBody(x); err != nil {
			return err
		}
		h.me.put(key, body, now)
	}
	x.outcome, x.reason = OutcomeAllow, "crmgate me endpoint"
	hdr := x.w.Header()
	hdr.Set("Content-Type", "application/json")
	// The answer is about one user: no shared cache may keep it.
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	x.w.WriteHeader(http.StatusOK)
	if x.r.Method != http.MethodHead {
		_, _ = x.w.Write(body)
	}
	return nil
}

func (h *Handler) meBody(x *exchange) ([]byte, error) {
	subj := x.input.Subject
	ans := meAnswer{
		Subject:        meSubject{ID: subj.ID, Roles: nonNil(subj.Roles), Teams: nonNil(subj.Teams), MFA: subj.MFA, Auth: subj.Auth},
		PolicyRevision: h.o.Policy.Revision(),
		Modules:        []meModule{},
	}
	actions := h.profileActions()
	for _, module := range h.o.Profile.Modules {
		m := meModule{Module: module}
		for _, action := range actions {
			in := policy.Input{
				Subject:  subj,
				Request:  policy.Request{ID: x.id, Method: http.MethodGet, Path: mePath, RemoteIP: h.o.ClientAddr.Of(x.r), Time: requestTime(x.start)},
				Resource: policy.Resource{CRM: h.o.Profile.Name, Module: module, Action: action},
			}
			d, err := h.o.Policy.Decide(x.r.Context(), &in)
			if err != nil {
				return nil, errPolicy(err)
			}
			// The proxy's order: step-up first, whatever allow says.
			stepUp := d.RequireMFA && !subj.MFA
			if !stepUp && !d.Allow {
				continue
			}
			m.Actions = append(m.Actions, meAction{Action: action, Allowed: !stepUp, MFARequired: stepUp, Reasons: d.Reasons})
		}
		if len(m.Actions) > 0 {
			ans.Modules = append(ans.Modules, m)
		}
	}
	body, err := json.Marshal(ans)
	if err != nil {
		return nil, errPolicy(err)
	}
	return body, nil
}

// profileActions are meActions plus the profile's own actions, in order.
func (h *Handler) profileActions() []string {
	out := slices.Clone(meActions)
	var extra []string
	for _, r := range h.o.Profile.Routes {
		if !r.Refuse && r.Action != "" && !slices.Contains(out, r.Action) && !slices.Contains(extra, r.Action) {
			extra = append(extra, r.Action)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}

// meKey identifies everything the policy can see of the subject, and the
// policy revision.
func meKey(s *policy.Subject, revision string) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(append(b, 0), revision...))
	return hex.EncodeToString(sum[:]), nil
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}
