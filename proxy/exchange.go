package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/audit"
	"github.com/crmgate/crmgate/proxy/budget"
	"github.com/crmgate/crmgate/proxy/metrics"
	"github.com/crmgate/crmgate/proxy/profile"
	"github.com/crmgate/crmgate/proxy/redact"
)

// exchange is the state of one request as it moves through the pipeline.
type exchange struct {
	w          *statusWriter
	r          *http.Request
	start      time.Time
	id         string
	decisionID string

	match    profile.Match
	input    policy.Input
	body     []byte // request body read for writes; nil when not read
	decided  bool
	decision policy.Decision

	credName       string // crmgate's own upstream credential header
	credValue      string
	upstreamStart  time.Time
	upstreamStatus int
	upstreamErr    error

	// filter is the list's compiled record rule, made before forwarding
	// for the pushdown; pushdown is its level (cond.Exact, Partial, None;
	// "" for anything but a list) and pushReason why it is not exact.
	// upstreamQuery replaces the client's query when pushed is set.
	filter *policy.RecordFilter
	// related is the policy of a related list's records; relatedModule
	// its module, for the decision log.
	related       *related
	relatedModule string
	pushdown      string
	pushReason    string
	pushed        bool
	upstreamQuery string
	// rewritten: upstreamQuery replaces the client's query for another
	// reason than the pushed rule: the profile forwards its own reading of
	// every query (profile.Canonicalizer, with extraHeader set), or the
	// record rule's fields were asked for (profile.FieldFetcher).
	// clientQuery is the body of a QueryBody route as the client sent it,
	// before any rewrite of x.body.
	rewritten   bool
	extraHeader http.Header
	clientQuery []byte

	// meter counts the records of a read under a read budget; nil when
	// the policy set none or the request returns no records.
	meter *budget.Meter

	respDone        chan struct{} // closed when the response transform ends
	recordsReturned int
	recordsFiltered int
	fieldsRedacted  int
	fieldsMasked    int
	recordIDs       []string

	outcome string
	reason  string
	problem *Problem
	errText string // internal cause, for the decision log only
	logged  bool
	h       *Handler
}

func (h *Handler) begin(w http.ResponseWriter, r *http.Request) *exchange {
	id, decisionID := newIDs()
	return &exchange{
		w:          &statusWriter{ResponseWriter: w},
		r:          r,
		start:      h.o.Now(),
		id:         id,
		decisionID: decisionID,
		h:          h,
	}
}

// queryBody is the client's query body (search), nil for other routes.
func (x *exchange) queryBody() []byte { return x.clientQuery }

// currentQuery is the query as it will be sent upstream so far.
func (x *exchange) currentQuery() string {
	if x.pushed || x.rewritten {
		return x.upstreamQuery
	}
	return x.r.URL.RawQuery
}

type exchangeKey struct{}

func withExchange(ctx context.Context, x *exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, x)
}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// rewrite builds the upstream request from scratch: the canonical path that
// was classified (never the client's spelling), crmgate's own credential,
// and only allow-listed client headers.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	x := exchangeFrom(pr.In.Context())
	out := pr.Out
	target := h.o.Upstream.URL
	path := pr.In.URL.Path
	if x != nil && x.match.Path != "" {
		path = x.match.Path
	}
	out.URL.Scheme = target.Scheme
	out.URL.Host = target.Host
	out.URL.Path = joinPath(target.Path, path)
	// The canonical path is its own escaped form (OData keys keep their
	// parentheses); where it is not, net/url ignores RawPath and escapes.
	out.URL.RawPath = out.URL.Path
	out.URL.RawQuery = pr.In.URL.RawQuery
	if x != nil && (x.pushed || x.rewritten) {
		out.URL.RawQuery = x.upstreamQuery
	}
	out.Host = target.Host

	in := pr.In.Header
	out.Header = make(http.Header, len(forwardHeaders)+4)
	for _, k := range forwardHeaders {
		if v, ok := in[k]; ok {
			out.Header[k] = append([]string(nil), v...)
		}
	}
	pr.SetXForwarded()
	// The CRM's own logs get the client crmgate established (see
	// ClientAddr), not the chain the client or its proxies wrote, nor the
	// load balancer's address.
	ip := ""
	if x != nil {
		ip = x.input.Request.RemoteIP
	} else {
		ip = h.o.ClientAddr.Of(pr.In)
	}
	if ip != "" {
		out.Header.Set("X-Forwarded-For", ip)
	} else {
		out.Header.Del("X-Forwarded-For")
	}
	// The client's Host header is the client's choice: a CRM that builds
	// links or reset mails from X-Forwarded-Host would build them for any
	// host an attacker names.
	out.Header.Del("X-Forwarded-Host")
	if x != nil && pr.In.Method == http.MethodHead {
		// HEAD is answered from a GET, so the record rule sees the record
		// and a record the subject may not see is a 404 here too; the
		// server sends no body for HEAD.
		out.Method = http.MethodGet
	}
	if x != nil {
		out.Header.Set("X-Request-Id", x.id)
		if x.body != nil {
			body := x.body
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.ContentLength = int64(len(body))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		} else {
			out.Body = http.NoBody
			out.ContentLength = 0
		}
		out.Header.Del("Transfer-Encoding")
		out.TransferEncoding = nil
	}
	// Only identity encoding comes back, so the response can be inspected.
	out.Header.Set("Accept-Encoding", "identity")
	if x != nil {
		for k, v := range x.extraHeader {
			out.Header[k] = v
		}
	}
	if x != nil && x.credName != "" {
		out.Header.Set(x.credName, x.credValue)
	}
}

// modifyResponse inspects the CRM's answer before it reaches the client.
func (h *Handler) modifyResponse(res *http.Response) error {
	x := exchangeFrom(res.Request.Context())
	if x == nil {
		return nil
	}
	x.upstreamStatus = res.StatusCode
	h.o.Metrics.ObserveUpstream(x.match.Module, res.StatusCode, nil, h.o.Now().Sub(x.upstreamStart))
	// CRM cookies and its own auth challenges are for crmgate's credential,
	// not for the client.
	res.Header.Del("Set-Cookie")
	res.Header.Del("WWW-Authenticate")
	// Dataverse names a created row by its URL at the CRM.
	if v := res.Header.Get("OData-EntityId"); v != "" {
		res.Header.Del("OData-EntityId")
		if link, ok := h.rewriteLink(v); ok {
			res.Header.Set("OData-EntityId", link)
		}
	}
	if !x.decided {
		return nil // a configured public path: passed through as is
	}
	if err := h.enforceResponse(x, res); err != nil {
		x.upstreamErr = err
		return err
	}
	return nil
}

// upstreamError records a transport failure; finish turns it into a 502/504.
func (h *Handler) upstreamError(_ http.ResponseWriter, r *http.Request, err error) {
	x := exchangeFrom(r.Context())
	if x == nil {
		return
	}
	if x.upstreamErr == nil {
		// A transport failure; errors from modifyResponse are already set.
		h.o.Metrics.ObserveUpstream(x.match.Module, 0, err, h.o.Now().Sub(x.upstreamStart))
		x.upstreamErr = upstreamErrorProblem(err)
	}
}

// record emits the decision-log event and the metrics for the exchange,
// exactly once.
func (h *Handler) record(x *exchange) {
	if x.logged {
		return
	}
	x.logged = true
	elapsed := h.o.Now().Sub(x.start)
	status := x.w.status
	if status == 0 {
		status = http.StatusOK
	}
	m := h.o.Metrics
	var roles []string
	subjectID := ""
	if x.input.Subject != nil {
		roles = x.input.Subject.Roles
		subjectID = x.input.Subject.ID
	}
	if x.decided {
		m.ObserveDecision(x.match.Module, x.match.Action, x.outcome, roles, x.decision.Duration)
	} else {
		m.ObserveDecision(x.match.Module, x.match.Action, x.outcome, roles, 0)
	}
	m.ObserveRequest(x.match.Module, x.outcome, elapsed)
	if x.fieldsRedacted > 0 {
		m.RedactedFields(x.match.Module, metrics.RedactHidden, x.fieldsRedacted-x.fieldsMasked)
		m.RedactedFields(x.match.Module, metrics.RedactMasked, x.fieldsMasked)
	}
	if x.recordsReturned > 0 || x.recordsFiltered > 0 {
		m.RecordsFiltered(x.match.Module, x.recordsReturned, x.recordsFiltered)
	}
	h.recordPushdown(x)
	h.closeBudget(x)

	ev := &audit.Event{
		DecisionID:     x.decisionID,
		Timestamp:      x.start.UTC(),
		Path:           h.o.PolicyPath,
		RequestID:      x.id,
		SubjectID:      subjectID,
		Roles:          roles,
		Module:         x.match.Module,
		Action:         x.match.Action,
		RecordID:       x.match.ID,
		Pushdown:       x.pushdown,
		PushdownReason: x.pushReason,
		RelatedModule:  x.relatedModule,
		Outcome:        x.outcome,
		Status:         status,
		Reason:         x.reason,
		Error:          x.errText,
		LatencyNS:      elapsed.Nanoseconds(),

		RecordsReturned: x.recordsReturned,
		RecordsFiltered: x.recordsFiltered,
		FieldsRedacted:  x.fieldsRedacted,
		RecordIDs:       x.recordIDs,
	}
	if x.meter != nil {
		ev.Budgeted = true
		ev.BudgetRemaining = x.meter.Remaining()
		ev.BudgetSpent = x.meter.Spent() && x.meter.Remaining() == 0
		ev.RecordsWithheld = int(x.meter.Withheld())
	}
	if x.decided {
		// The event points into the exchange rather than copying the
		// input and boxing the decision: record is the exchange's last
		// step, so neither changes after Log.
		ev.Input = &x.input
		ev.Result = &x.decision
		ev.Revision = x.decision.Revision
		ev.EvalNS = x.decision.Duration.Nanoseconds()
	} else {
		ev.Revision = h.o.Policy.Revision()
	}
	h.o.DecisionLog.Log(ev)
}

// setStats keeps what the response transform did, for the log and metrics.
func (x *exchange) setStats(s redact.Stats) {
	x.recordsReturned, x.recordsFiltered, x.fieldsRedacted = s.Returned, s.Filtered, s.Redacted
	x.fieldsMasked = s.Masked
	x.recordIDs = s.IDs
}

// waitResponse waits for a streaming transform to finish, so its stats are
// complete before the decision is recorded. The reverse proxy closes the
// transform's pipe when it stops copying, so this never waits on a client
// that went away.
func (x *exchange) waitResponse() {
	if x.respDone != nil {
		<-x.respDone
	}
}

// finishAborted records a request whose response was cut off mid-body.
func (x *exchange) finishAborted() {
	x.waitResponse()
	if x.outcome == "" || x.outcome == OutcomeAllow {
		x.outcome, x.reason = OutcomeError, "response aborted"
	}
	x.h.record(x)
}

// statusWriter remembers the status sent to the client. Unwrap keeps
// http.ResponseController (flushing for streamed lists) working.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = http.StatusOK, true
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
