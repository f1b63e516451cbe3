// Package proxy is crmgate's request pipeline: authenticate, classify,
// decide, enforce, forward to the CRM, enforce the response, and log and
// meter the decision (DESIGN.md §1). Handler.serve reads top to bottom as that
// pipeline; each stage returns a value or a *Problem, and a Problem becomes a
// response in exactly one place.
package proxy

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/audit"
	"github.com/crmgate/crmgate/proxy/budget"
	"github.com/crmgate/crmgate/proxy/identity"
	"github.com/crmgate/crmgate/proxy/metrics"
	"github.com/crmgate/crmgate/proxy/profile"
)

// Decider is what the proxy needs from the policy engine.
type Decider interface {
	Decide(ctx context.Context, in *policy.Input) (policy.Decision, error)
	Record(ctx context.Context, in *policy.Input) (policy.RecordDecision, error)
	RecordFilter(ctx context.Context, in *policy.Input) (*policy.RecordFilter, error)
	Revision() string
}

// BearerAuthenticator verifies API clients' bearer tokens.
type BearerAuthenticator interface {
	Authenticate(ctx context.Context, raw string) (*policy.Subject, error)
}

// Sessions is the browser side of authentication: OIDC login and
// server-side sessions.
type Sessions interface {
	// Subject returns the subject of the request's session, or ok=false
	// when the request carries no valid session (none, expired, revoked,
	// tampered). An error means the session store could not be asked: the
	// request fails closed with 503.
	Subject(r *http.Request) (subj *policy.Subject, ok bool, err error)
	// Redirect answers a browser with a redirect to sign in (stepUp: with
	// MFA) that returns to the requested URL.
	Redirect(w http.ResponseWriter, r *http.Request, stepUp bool)
	// Routes serves crmgate's own endpoints under /.crmgate/.
	Routes() http.Handler
}

// ProblemPage renders a problem as an HTML page for browsers.
type ProblemPage func(w http.ResponseWriter, status int, title, detail, decisionID string)

// DecisionLogger receives one event per request. It must not block.
type DecisionLogger interface {
	Log(e *audit.Event)
}

// Options are the Handler's dependencies and settings. Every field without a
// documented default is required.
type Options struct {
	Profile  *profile.Profile
	Policy   Decider
	Bearer   BearerAuthenticator // nil: bearer tokens are not accepted
	Sessions Sessions            // nil: no browser login
	// Seen hears the user id of every request whose bearer token
	// authenticated, so API-only users count as active in the dormant-user
	// report (sessions record their own activity). It runs on the request
	// path and must neither block nor fail; nil records nothing.
	Seen func(userID string)
	// Page renders problems for browsers; nil answers JSON only.
	Page     ProblemPage
	Upstream UpstreamOptions
	// Transport defaults to NewTransport(Upstream).
	Transport http.RoundTripper
	// PublicPath reports paths served without authentication or policy.
	PublicPath func(cleanPath string) bool
	// MaxRequestBody caps the request bodies crmgate reads.
	MaxRequestBody int64
	// HashKey keys the "hash" mask (HMAC), so masked values cannot be
	// reversed by hashing guesses. Replicas must share it.
	HashKey []byte
	// CursorKey signs the list cursors crmgate hands out (cursor.go);
	// replicas sharing it accept each other's.
	CursorKey []byte
	// MaxRecordIDs bounds the record ids one decision-log event lists.
	MaxRecordIDs int
	// NoPushdown keeps the record rule out of the CRM's list queries:
	// every list is filtered after the CRM answers (config
	// crm.pushdown: false).
	NoPushdown bool
	// PublicURL is crmgate's own external base URL (server.public_url):
	// links the CRM writes into its answers (@odata.nextLink) are
	// rewritten to it. Empty: they become path-absolute references.
	PublicURL string
	// StepUpACR and StepUpMaxAge go into RFC 9470 challenges.
	StepUpACR    string
	StepUpMaxAge time.Duration
	// PolicyPath is the decision-log "path" (the package root).
	PolicyPath  string
	DecisionLog DecisionLogger
	Metrics     *metrics.Metrics
	Logger      *zap.Logger
	// Now defaults to time.Now; tests fix it.
	Now func() time.Time
	// Budgets counts the records each subject reads against the policy's
	// read_budget; nil counts in memory, for a single node.
	Budgets budget.Store
	// BudgetAllowOnStoreError lets reads through uncounted while Budgets
	// fails (config budgets.on_store_error: allow); by default they are
	// refused with 503.
	BudgetAllowOnStoreError bool
	// BudgetReserve is how many records a list reserves from Budgets per
	// round trip (default 50).
	BudgetReserve int
	// ClientAddr says who the client is behind trusted proxies; the zero
	// value trusts no one, so the connection's address is the client's.
	ClientAddr ClientAddr
}

// Handler is crmgate's main HTTP handler.
type Handler struct {
	o  Options
	rp *httputil.ReverseProxy
	// me caches /.crmgate/me answers (me.go).
	me meCache
}

// New checks the options and builds the handler.
func New(o Options) (*Handler, error) {
	switch {
	case o.Profile == nil:
		return nil, errors.New("new proxy: no CRM profile")
	case o.Policy == nil:
		return nil, errors.New("new proxy: no policy engine")
	case o.Upstream.URL == nil:
		return nil, errors.New("new proxy: no upstream url")
	case o.DecisionLog == nil || o.Metrics == nil:
		return nil, errors.New("new proxy: decision log and metrics are required")
	}
	if o.Upstream.Credential == nil {
		o.Upstream.Credential = NoCredential{}
	}
	if o.Transport == nil {
		o.Transport = NewTransport(o.Upstream)
	}
	if o.PublicPath == nil {
		o.PublicPath = func(string) bool { return false }
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PolicyPath == "" {
		o.PolicyPath = "crmgate"
	}
	if o.Budgets == nil {
		o.Budgets = budget.NewMemory(nil)
	}
	if o.BudgetReserve <= 0 {
		o.BudgetReserve = defaultBudgetReserve
	}
	h := &Handler{o: o}
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      o.Transport,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.upstreamError,
		// Flush as soon as bytes arrive: large lists stream to the client.
		FlushInterval: -1,
		ErrorLog:      zap.NewStdLog(o.Logger.Named("reverseproxy")),
		// Without a pool ReverseProxy allocates a 32 KiB copy buffer per
		// request: half of what a request allocated, and the GC work with it.
		BufferPool: CopyBuffers,
	}
	return h, nil
}

// ServeHTTP runs the pipeline for one request and records exactly one
// decision for it, however it ends.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := h.begin(w, r)
	defer func() {
		// ReverseProxy aborts with http.ErrAbortHandler when the upstream
		// breaks mid-body; the decision must still be logged before the
		// panic travels on to the server, which closes the connection.
		if v := recover(); v != nil {
			x.finishAborted()
			panic(v)
		}
	}()
	err := h.serve(x)
	h.finish(x, err)
}

// serve is the pipeline of DESIGN.md §1.
func (h *Handler) serve(x *exchange) error {
	if err := checkRequestLine(x.r); err != nil {
		return err
	}
	if x.r.URL.Path == mePath {
		return h.serveMe(x)
	}
	if h.o.Sessions != nil && strings.HasPrefix(x.r.URL.Path, ownPrefix) {
		// crmgate's own endpoints (login, callback, logout...): they are
		// not CRM routes, and record themselves as such.
		x.outcome, x.reason = OutcomeAllow, "crmgate endpoint"
		h.o.Sessions.Routes().ServeHTTP(x.w, x.r)
		return nil
	}
	if h.o.PublicPath(x.r.URL.Path) && safePublicPath(x.r.URL.EscapedPath()) {
		x.outcome, x.reason = OutcomeAllow, "public path"
		return h.forward(x)
	}
	if err := h.authenticate(x); err != nil {
		return err
	}
	if err := h.classify(x); err != nil {
		return err
	}
	if err := h.readBody(x); err != nil {
		return err
	}
	if err := h.decide(x); err != nil {
		return err
	}
	if err := h.enforceRequest(x); err != nil {
		return err
	}
	if err := h.pushRecordRule(x); err != nil {
		return err
	}
	if err := h.reserveBudget(x); err != nil {
		return err
	}
	return h.forward(x)
}

// authenticate establishes the subject: a bearer token when the request
// carries one (it never falls back to a session, so a bad token is a bad
// token), otherwise the browser session. A request with no credentials is
// refused before anything about the route is revealed.
func (h *Handler) authenticate(x *exchange) error {
	raw, hasBearer, err := bearerToken(x.r.Header)
	switch {
	case err != nil:
		h.o.Metrics.Authentication("bearer", "failure")
		return errInvalidToken(err)
	case hasBearer && h.o.Bearer != nil:
		subj, err := h.o.Bearer.Authenticate(x.r.Context(), raw)
		if err != nil {
			h.o.Metrics.Authentication("bearer", "failure")
			return errInvalidToken(err)
		}
		h.o.Metrics.Authentication("bearer", "success")
		x.input.Subject = subj
		if h.o.Seen != nil {
			h.o.Seen(subj.ID)
		}
		return nil
	case hasBearer:
		h.o.Metrics.Authentication("bearer", "failure")
		return errInvalidToken(errors.New("bearer tokens are not accepted"))
	}
	if h.o.Sessions != nil {
		subj, ok, err := h.o.Sessions.Subject(x.r)
		switch {
		case err != nil:
			h.o.Metrics.Authentication("session", "failure")
			return errSessionStore(err)
		case ok:
			h.o.Metrics.Authentication("session", "success")
			x.input.Subject = subj
			return nil
		}
		h.o.Metrics.Authentication("session", "missing")
		if isNavigation(x.r) {
			return h.loginRedirect(false, "login required")
		}
	} else {
		h.o.Metrics.Authentication("bearer", "missing")
	}
	return errUnauthenticated("no credentials", nil)
}

// loginRedirect is the browser's answer to "who are you?" or "prove it
// with MFA": a redirect to the IdP, recorded like any other refusal.
func (h *Handler) loginRedirect(stepUp bool, reason string) *Problem {
	outcome := OutcomeDeny
	if stepUp {
		outcome = OutcomeStepUp
	}
	return &Problem{Status: http.StatusFound, Kind: "login-required", Title: "Sign-in required", Outcome: outcome,
		Reason: reason, respond: func(w http.ResponseWriter, r *http.Request) { h.o.Sessions.Redirect(w, r, stepUp) }}
}

// prefersHTML is true when the client lists text/html and no JSON type
// before it: browsers do, API clients do not.
func prefersHTML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch {
		case mt == "text/html" || mt == "application/xhtml+xml":
			return true
		case isJSONMedia(mt):
			return false
		}
	}
	return false
}

// isNavigation tells a browser loading a page from an API call: only the
// former is answered with a login redirect or an HTML page.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	return prefersHTML(r)
}

// classify maps the request to module, record and action with the profile.
func (h *Handler) classify(x *exchange) error {
	m, err := h.o.Profile.Classify(x.r.Method, x.r.URL.EscapedPath(), x.r.Header)
	if err == nil {
		err = h.o.Profile.CheckQuery(x.r.URL.RawQuery)
	}
	if err == nil {
		// Salesforce's /query names its object in the SOQL.
		m, err = h.o.Profile.ClassifyQuery(m, x.r.URL.RawQuery)
	}
	switch {
	case err == nil:
	case errors.Is(err, profile.ErrBadQuery):
		return errBadRequest("The query is not one crmgate can check: "+queryProblem(err), "bad query", err)
	case errors.Is(err, profile.ErrUnknownRoute):
		return errNotFound("unknown route", err)
	case errors.Is(err, profile.ErrMethodOverride):
		return errBadRequest("Method override is not accepted.", "method override", err)
	default:
		return errBadRequest("The request path is not acceptable.", "bad path", err)
	}
	x.match = m
	x.input.Resource = policy.Resource{CRM: h.o.Profile.Name, Module: m.Module, ID: m.ID, Action: m.Action}
	if c, ok := h.o.Profile.Dialect.(profile.Canonicalizer); ok {
		q, extra, err := c.Canonical(m, x.r.URL.RawQuery, x.r.Header)
		if err != nil {
			return errBadRequest("The query is not one crmgate can check: "+queryProblem(err), "bad query", err)
		}
		x.upstreamQuery, x.rewritten, x.extraHeader = q, true, extra
	}
	return nil
}

// queryProblem is the part of a query error a client can act on.
func queryProblem(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "+profile.ErrBadQuery.Error()); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// requestTime is input.request.time: the request's start to the second.
// Policies that read the time (working hours) make it part of the decision
// and record-filter cache keys; at nanosecond precision no two requests
// would share a compiled record filter, and every list would pay for a
// partial evaluation of the record rules (about 4 ms for the reference
// policy). No time rule needs finer than a second.
func requestTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// decide runs the one policy evaluation for the request.
func (h *Handler) decide(x *exchange) error {
	x.input.Request = policy.Request{
		ID: x.id, Method: x.r.Method, Path: x.match.Path,
		RemoteIP: h.o.ClientAddr.Of(x.r), Time: requestTime(x.start),
	}
	if x.r.URL.RawQuery != "" {
		// Without a query the parse would only allocate an empty map,
		// which the policy input and the log treat as absent anyway.
		x.input.Request.Query = x.r.URL.Query()
	}
	d, err := h.o.Policy.Decide(x.r.Context(), &x.input)
	x.decided = true
	x.decision = d
	if err != nil {
		return errPolicy(err)
	}
	return nil
}

// enforceRequest applies the module-level decision in the contract's order:
// step-up first (whatever allow says), then allow, then write guards.
func (h *Handler) enforceRequest(x *exchange) error {
	if err := h.stepUpOrDeny(x, &x.decision, "policy denied"); err != nil {
		return err
	}
	if err := h.guardWrite(x); err != nil {
		return err
	}
	if err := h.checkTarget(x); err != nil {
		return err
	}
	return h.guardRequest(x)
}

// stepUpOrDeny applies a module decision in the contract's order: a
// subject without MFA is stepped up when the policy requires it, whatever
// allow says; otherwise allow false denies.
func (h *Handler) stepUpOrDeny(x *exchange, d *policy.Decision, reason string) error {
	if d.RequireMFA && !x.input.Subject.MFA {
		if x.input.Subject.Auth == identity.AuthSession && h.o.Sessions != nil && isNavigation(x.r) {
			h.o.Metrics.StepUp("browser")
			return h.loginRedirect(true, "mfa required")
		}
		h.o.Metrics.StepUp("api")
		return errStepUp(h.o.StepUpACR, int64(h.o.StepUpMaxAge/time.Second))
	}
	if !d.Allow {
		return errForbidden(reason)
	}
	return nil
}

// forward sends the request to the CRM.
func (h *Handler) forward(x *exchange) error {
	if x.outcome == "" {
		x.outcome = OutcomeAllow
	}
	name, value, err := h.o.Upstream.Credential.Header(x.r.Context())
	if err != nil {
		return upstreamErrorProblem(err)
	}
	x.credName, x.credValue = name, value
	ctx := withExchange(x.r.Context(), x)
	if h.o.Upstream.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.o.Upstream.Timeout)
		defer cancel()
	}
	x.upstreamStart = h.o.Now()
	defer x.waitResponse()
	h.rp.ServeHTTP(x.w, x.r.WithContext(ctx))
	if x.upstreamErr != nil {
		return x.upstreamErr
	}
	return nil
}

// finish writes the problem response, if any, and records the decision.
func (h *Handler) finish(x *exchange, err error) {
	if err != nil {
		p := asProblem(err)
		x.outcome, x.reason, x.problem = p.Outcome, p.Reason, p
		if !x.w.wroteHeader {
			h.respondProblem(x, p)
		}
		if p.Cause != nil {
			x.errText = p.Cause.Error()
			h.o.Logger.Debug("request refused", zap.String("request_id", x.id), zap.String("reason", p.Reason), zap.Error(p.Cause))
		}
	}
	h.record(x)
}

// ownPrefix is the path namespace of crmgate's own endpoints.
const ownPrefix = "/.crmgate/"

// respondProblem answers with the problem: a redirect for login, an HTML
// page for a browser, problem+json for everyone else.
func (h *Handler) respondProblem(x *exchange, p *Problem) {
	switch {
	case p.respond != nil:
		p.respond(x.w, x.r)
	case h.o.Page != nil && isNavigation(x.r):
		h.o.Page(x.w, p.Status, p.Title, p.Detail, x.decisionID)
	default:
		writeProblem(x.w, p, x.decisionID, "")
	}
}

// newIDs returns a request id and a decision id, random (version 4) UUIDs
// made from one read of the system's random source and one string, rather
// than a read and a string each.
func newIDs() (requestID, decisionID string) {
	var raw [32]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails; it crashes the program instead
	var buf [2 * 36]byte
	encodeUUID(buf[:36], raw[:16])
	encodeUUID(buf[36:], raw[16:])
	s := string(buf[:])
	return s[:36], s[36:]
}

// encodeUUID writes u (16 random bytes) into dst (36 bytes) as a version 4,
// RFC 9562 variant UUID in its canonical form.
func encodeUUID(dst, u []byte) {
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	const hexDigits = "0123456789abcdef"
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j], dst[j+1] = hexDigits[c>>4], hexDigits[c&0x0f]
		j += 2
	}
}

// CopyBuffers is the pool of ReverseProxy copy buffers crmgate uses;
// exported so the load harness can give a bare proxy the same one.
var CopyBuffers httputil.BufferPool = copyBuffers{}

type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte { return *copyBufferPool.Get().(*[]byte) }

func (copyBuffers) Put(b []byte) {
	if cap(b) != 32<<10 {
		return
	}
	b = b[:cap(b)]
	copyBufferPool.Put(&b)
}
