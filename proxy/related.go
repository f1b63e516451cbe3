package proxy

import (
	"strings"

	"github.com/crmgate/crmgate/policy"
)

// related is the policy of the records a related list returns: they belong
// to the link's module, not to the parent's, and are judged by that
// module's allow (action list), field rules and record rule, as if the
// subject listed that module. The parent is checked separately (guard.go).
type related struct {
	module   string
	decision policy.Decision
	input    policy.Input
}

// decideRelated resolves a related list's link to its module through the
// profile's link table and asks the policy whether the subject may list
// that module. A link crmgate does not know (a custom relationship) is
// refused rather than judged by the parent's rules: its records could be
// of any module.
func (h *Handler) decideRelated(x *exchange) error {
	segs := strings.Split(x.match.Path, "/")
	link := segs[len(segs)-1]
	module, ok := h.o.Profile.LinkModule(link)
	if !ok {
		return errForbidden("related list through a link crmgate cannot resolve")
	}
	in := x.input
	in.Resource = policy.Resource{CRM: h.o.Profile.Name, Module: module, Action: policy.ActionList}
	d, err := h.o.Policy.Decide(x.r.Context(), &in)
	if err != nil {
		return errPolicy(err)
	}
	x.related = &related{module: module, decision: d, input: in}
	x.relatedModule = module
	return h.stepUpOrDeny(x, &x.related.decision, "related module denied")
}

// fieldDecision is the decision whose field rules apply to the records of
// this response: the related module's for a related list, the request's
// otherwise.
func (x *exchange) fieldDecision() *policy.Decision {
	if x.related != nil {
		return &x.related.decision
	}
	return &x.decision
}

// responseModule is the module of the records in this response.
func (x *exchange) responseModule() string {
	if x.related != nil {
		return x.related.module
	}
	return x.match.Module
}

// recordInput is the input the record rule is compiled for.
func (x *exchange) recordInput() *policy.Input {
	if x.related != nil {
		return &x.related.input
	}
	return &x.input
}
