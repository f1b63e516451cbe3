package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/budget"
	"github.com/crmgate/crmgate/proxy/profile"
)

// defaultBudgetReserve is how many records a list reserves per store round
// trip: a 20-record page costs one, a 200-record page four.
const defaultBudgetReserve = 50

// budgetRefundTimeout bounds the refund at the end of a request, whose own
// context may be done by then.
const budgetRefundTimeout = time.Second

// returnsRecords reports whether the request's answer carries records the
// read budget counts: lists (exports routed as lists count their rows),
// related lists and reads of one record. Writes answer with the record as
// written, which the writer already had.
func returnsRecords(m profile.Match) bool {
	switch m.Kind {
	case profile.KindList, profile.KindRelated:
		return true
	case profile.KindRecord:
		return m.Action == policy.ActionRead
	}
	return false
}

// reserveBudget takes the request's first records from the subject's read
// budget before the CRM is asked: one for a record, a chunk for a list. A
// spent budget is refused here with 429, so nothing is fetched that could
// not be sent. The count is by subject id, whatever session or token the
// request came with, and lives in the store every replica shares.
func (h *Handler) reserveBudget(x *exchange) error {
	b := x.decision.ReadBudget
	if b == nil || !returnsRecords(x.match) {
		return nil
	}
	want := int64(1)
	if x.match.Kind != profile.KindRecord {
		want = int64(h.o.BudgetReserve)
	}
	m := budget.NewMeter(x.r.Context(), h.o.Budgets, x.input.Subject.ID, b.Records, b.Per,
		int64(h.o.BudgetReserve), h.o.BudgetAllowOnStoreError)
	ok, err := m.Begin(want)
	switch {
	case err != nil && h.o.BudgetAllowOnStoreError:
		h.o.Logger.Warn("read budget store failed; reads pass uncounted (budgets.on_store_error: allow)",
			zap.String("request_id", x.id), zap.Error(err))
		x.meter = m
		return nil
	case err != nil:
		return errBudgetStore(err)
	}
	x.meter = m
	if !ok {
		return h.budgetProblem(x)
	}
	return nil
}

// budgetProblem is the 429 for a spent budget, with Retry-After set to the
// seconds until the window ends.
func (h *Handler) budgetProblem(x *exchange) *Problem {
	h.o.Metrics.ReadBudgetExceeded(x.input.Subject.Roles)
	secs := int64((x.meter.Reset() + time.Second - 1) / time.Second)
	secs = max(secs, 1)
	p := errBudgetSpent()
	p.retryAfter = strconv.FormatInt(secs, 10)
	return p
}

// closeBudget refunds what the request reserved but did not send, and
// counts a list that had records withheld. It runs once the response is
// complete.
func (h *Handler) closeBudget(x *exchange) {
	m := x.meter
	if m == nil {
		return
	}
	if m.Withheld() > 0 && (x.problem == nil || x.problem.Kind != kindBudgetSpent) {
		// A list cut short by the budget: the 429 path counted itself.
		h.o.Metrics.ReadBudgetExceeded(x.input.Subject.Roles)
	}
	h.refundBudget(x)
}

// refundBudget hands back what the request reserved and did not send. The
// transform calls it as soon as the records are counted, before the client
// has the end of the body, so the client's next request already sees the
// refund; record calls it again for requests that never got that far
// (Meter.Close is idempotent).
func (h *Handler) refundBudget(x *exchange) {
	if x.meter == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), budgetRefundTimeout)
	defer cancel()
	if err := x.meter.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		// A lost refund only leaves the subject less budget until the
		// window ends: the safe direction.
		h.o.Logger.Warn("read budget refund failed", zap.String("request_id", x.id), zap.Error(err))
	}
}

const kindBudgetSpent = "read-budget-exceeded"

func errBudgetSpent() *Problem {
	return &Problem{Status: http.StatusTooManyRequests, Kind: kindBudgetSpent, Title: "Read budget spent",
		Detail:  "You have read as many records as your policy allows for now; try again after the time in Retry-After.",
		Outcome: OutcomeDeny, Reason: "read budget spent"}
}

// errBudgetStore is the fail-closed answer when the read budget cannot be
// counted (budgets.on_store_error: deny, the default): 503, not 429, since
// the subject did nothing wrong and retrying once the store is back works.
func errBudgetStore(cause error) *Problem {
	return &Problem{Status: http.StatusServiceUnavailable, Kind: "read-budget-unavailable", Title: "Temporarily unavailable",
		Detail: "Read budgets cannot be counted right now; try again shortly.", Outcome: OutcomeError,
		Reason: "read budget store unavailable", Cause: cause}
}
