package proxy

import (
	"net/http"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/policy/cond"
	"github.com/crmgate/crmgate/proxy/metrics"
	"github.com/crmgate/crmgate/proxy/profile"
)

func errQueryConflict(cause error) *Problem {
	return &Problem{Status: http.StatusBadRequest, Kind: "query-conflict", Title: "Filter cannot be combined with the access rule",
		Detail:  "The list's filter would change how crmgate's access rule is applied (an OR operator, a repeated or malformed filter parameter). Send each filter once, combined with AND.",
		Outcome: OutcomeDeny, Reason: "query conflicts with pushed record rule", Cause: cause}
}

// pushRecordRule asks the CRM to apply the record rule to a list itself,
// so the list comes back in full pages with the CRM's true totals instead
// of pages shortened by filtering afterwards. The rule is added to the
// upstream query (AND with the client's filter) when the policy compiler
// says it can be pushed exactly or partially and the profile can say it in
// the CRM's filter syntax. Records that come back are checked by the rule
// all the same. Related lists are filtered after: their query parameters
// are not the module list's.
func (h *Handler) pushRecordRule(x *exchange) error {
	if err := h.askRuleFields(x); err != nil {
		return err
	}
	if x.match.Kind != profile.KindList || x.match.Action != policy.ActionList {
		return nil
	}
	f := x.filter
	if f == nil {
		var err error
		if f, err = h.o.Policy.RecordFilter(x.r.Context(), &x.input); err != nil {
			return errPolicy(err)
		}
	}
	x.filter = f
	p := f.Pushdown()
	x.pushdown, x.pushReason = p.Level, p.Reason
	switch {
	case h.o.NoPushdown:
		x.pushdown, x.pushReason = cond.None, "pushdown disabled (crm.pushdown: false)"
		return nil
	case p.Level == cond.None:
		return nil
	case h.o.Profile.Dialect == nil:
		x.pushdown, x.pushReason = cond.None, "the profile knows no query language"
		return nil
	case x.match.Cursor:
		// Whatever rule ran in the first batch's query, crmgate does not
		// see it here: the continuation is filtered after.
		x.pushdown, x.pushReason = cond.None, "a continuation of an earlier query, whose own query crmgate does not see"
		return nil
	}
	var body []byte
	if x.match.QueryBody {
		body = x.body
	}
	q, newBody, ok, err := h.o.Profile.Dialect.Push(x.match, x.currentQuery(), body, p.Cond)
	if err != nil {
		return errQueryConflict(err)
	}
	if !ok {
		x.pushdown, x.pushReason = cond.None, "the record rule is not expressible in "+h.o.Profile.Name+" filters"
		return nil
	}
	x.upstreamQuery, x.pushed = q, true
	if x.match.QueryBody {
		x.body = newBody
	}
	if x.pushdown == cond.Exact && len(h.queriedFields(x)) > 0 && f.MayHideFields() {
		// Records whose filtered or sorted field is hidden for them are
		// dropped after the CRM counted them (queryGuardRule).
		x.pushdown, x.pushReason = cond.Partial, "the query filters or sorts on fields the record rule may hide"
	}
	return nil
}

// recordPushdown meters a list's pushdown once its response is done: with
// an exact pushdown every record the rule still refused is a disagreement
// between CRM and policy (a case-insensitive comparison in the CRM's
// database, a stale policy), worth an operator's attention.
func (h *Handler) recordPushdown(x *exchange) {
	if x.pushdown == "" {
		return
	}
	refused := 0
	if x.pushdown == cond.Exact {
		refused = x.recordsFiltered
	}
	h.o.Metrics.ListPushdown(x.match.Module, pushLevelLabel(x.pushdown), refused)
}

func pushLevelLabel(level string) string {
	switch level {
	case cond.Exact:
		return metrics.PushdownExact
	case cond.Partial:
		return metrics.PushdownPartial
	}
	return metrics.PushdownNone
}

// askRuleFields makes a CRM that answers only the fields a request names
// (profile.FieldFetcher: HubSpot's properties, a Dataverse $select, a SOQL
// SELECT) return the fields the record rule reads, so each record of a
// list, related list or read can be judged; without them every record
// would fail the rule, or worse, be judged on absent fields.
func (h *Handler) askRuleFields(x *exchange) error {
	ff, ok := h.o.Profile.Dialect.(profile.FieldFetcher)
	if !ok || x.match.IDsOnly {
		return nil
	}
	switch {
	case x.match.Kind == profile.KindList && (x.match.Action == policy.ActionList || x.match.Action == policy.ActionRead):
	case (x.match.Kind == profile.KindRecord || x.match.Kind == profile.KindRelated) && x.match.Action == policy.ActionRead:
	default:
		return nil
	}
	f, err := h.o.Policy.RecordFilter(x.r.Context(), x.recordInput())
	if err != nil {
		return errPolicy(err)
	}
	x.filter = f
	var body []byte
	if x.match.QueryBody {
		body = x.body
	}
	q, newBody, err := ff.WithFields(x.match, x.currentQuery(), body, f.Fields())
	if err != nil {
		return errBadRequest("The query is not one crmgate can check: "+queryProblem(err), "bad query", err)
	}
	x.upstreamQuery, x.rewritten = q, true
	if x.match.QueryBody {
		x.body = newBody
	}
	return nil
}
