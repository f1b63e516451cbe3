package proxy

import (
	"strings"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/policy/cond"
	"github.com/crmgate/crmgate/proxy/profile"
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
	if err := h.stepUpOrDeny(x, &x.related.decision, "related module denied"); err != nil {
		return err
	}
	if x.match.IDsOnly {
		return h.idsOnlyRule(x)
	}
	return nil
}

// idsOnlyRule admits a related list that answers bare ids (HubSpot's
// associations) only when the related module's record rule admits every
// record for this subject: with a rule that reads fields, the ids alone
// cannot be judged, and which ids are associated is itself what the rule
// would hide. Fetching each record to judge it would turn one request into
// a hundred; the client can read the associated records through the
// module's own search, where the rule is applied.
func (h *Handler) idsOnlyRule(x *exchange) error {
	f, err := h.o.Policy.RecordFilter(x.r.Context(), &x.related.input)
	if err != nil {
		return errPolicy(err)
	}
	if p := f.Pushdown(); p.Level != cond.Exact || p.Cond.Op != cond.True || f.MayHideFields() {
		return errForbidden("associations of a module whose record rule needs the records' fields")
	}
	x.filter = f
	return nil
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

// guardAssociations judges the modules whose associated ids a read asks to
// embed in each record (profile.Associator: HubSpot's associations
// parameter) as related lists of bare ids: the subject must be allowed to
// list each, and its record rule must admit every record, or the ids would
// reveal records the rule hides.
func (h *Handler) guardAssociations(x *exchange) error {
	as, ok := h.o.Profile.Dialect.(profile.Associator)
	if !ok {
		return nil
	}
	mods, err := as.Associations(x.r.URL.RawQuery)
	if err != nil {
		return errBadRequest("The query names fields in a form crmgate cannot check.", "bad query", err)
	}
	for _, module := range mods {
		in := x.input
		in.Resource = policy.Resource{CRM: h.o.Profile.Name, Module: module, Action: policy.ActionList}
		d, err := h.o.Policy.Decide(x.r.Context(), &in)
		if err != nil {
			return errPolicy(err)
		}
		if err := h.stepUpOrDeny(x, &d, "associated module denied"); err != nil {
			return err
		}
		f, err := h.o.Policy.RecordFilter(x.r.Context(), &in)
		if err != nil {
			return errPolicy(err)
		}
		if p := f.Pushdown(); p.Level != cond.Exact || p.Cond.Op != cond.True || f.MayHideFields() {
			return errForbidden("associations of a module whose record rule needs the records' fields")
		}
	}
	return nil
}
