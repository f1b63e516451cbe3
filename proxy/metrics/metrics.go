// Package metrics holds crmgate's Prometheus collectors (DESIGN.md §4).
//
// Every label value that reaches Prometheus comes from a bounded set: the
// configured roles, the modules the CRM profile knows, the fixed actions and
// outcomes. Anything else is counted as "other" (or "none" when empty), so a
// caller cannot grow the series count by sending unknown modules, roles or
// actions, and user or record ids can never become label values.
//
// Collectors are created from an injected prometheus.Registerer; nothing is
// registered globally. A nil *Metrics is valid and records nothing, which lets
// tests and tools build pipeline stages without a registry.
package metrics

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values used when a value is outside its bounded set.
const (
	// LabelOther stands for any value that is not in the label's bounded set.
	LabelOther = "other"
	// LabelNone stands for an empty value.
	LabelNone = "none"
)

// Decision and request outcomes (label "outcome").
const (
	OutcomeAllow  = "allow"
	OutcomeDeny   = "deny"
	OutcomeStepUp = "step_up"
	OutcomeError  = "error"
)

// Upstream error kinds (label "kind" of crmgate_upstream_errors_total).
const (
	UpstreamTimeout  = "timeout"
	UpstreamConnect  = "connect"
	UpstreamProtocol = "protocol"
	UpstreamCanceled = "canceled"
)

// Ways a field is redacted (label "how" of crmgate_fields_redacted_total).
const (
	RedactHidden     = "hidden"
	RedactMasked     = "masked"
	RedactNotVisible = "not_visible"
)

// Authentication methods and results (crmgate_authentications_total).
const (
	AuthBearer      = "bearer"
	AuthSession     = "session"
	AuthLogin       = "login"
	AuthBackchannel = "backchannel"

	AuthSuccess = "success"
	AuthFailure = "failure"
	AuthMissing = "missing"
)

// Step-up methods (label "method" of crmgate_step_ups_total).
const (
	StepUpBrowser = "browser"
	StepUpAPI     = "api"
)

// Decision-log event results (label "result" of
// crmgate_decision_log_events_total).
const (
	LogWritten = "written"
	LogDropped = "dropped"
	LogFailed  = "failed"
)

// Policy reload results (label "result" of crmgate_policy_reloads_total).
const (
	ReloadSuccess = "success"
	ReloadFailure = "failure"
)

var (
	actions        = []string{"list", "read", "create", "update", "delete", "export", "relate"}
	outcomes       = []string{OutcomeAllow, OutcomeDeny, OutcomeStepUp, OutcomeError}
	upstreamKinds  = []string{UpstreamTimeout, UpstreamConnect, UpstreamProtocol, UpstreamCanceled}
	redactHows     = []string{RedactHidden, RedactMasked, RedactNotVisible}
	authMethods    = []string{AuthBearer, AuthSession, AuthLogin, AuthBackchannel}
	authResults    = []string{AuthSuccess, AuthFailure, AuthMissing}
	stepUpMethods  = []string{StepUpBrowser, StepUpAPI}
	logResults     = []string{LogWritten, LogDropped, LogFailed}
	reloadResults  = []string{ReloadSuccess, ReloadFailure}
	upstreamCodes  = []string{"2xx", "3xx", "4xx", "5xx", "error"}
	decisionBucket = []float64{
		5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
		1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3,
	}
	requestBucket = []float64{
		0.5e-3, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3,
		0.1, 0.25, 0.5, 1, 2.5, 5, 10,
	}
)

// Metrics is the set of crmgate collectors. Create it with New; its methods
// are safe for concurrent use and do the label bounding themselves.
type Metrics struct {
	roles   []string // sorted, deduplicated configured roles
	modules func(string) bool
	reg     prometheus.Registerer // for collectors that start later

	decisions            *prometheus.CounterVec
	decisionDuration     *prometheus.HistogramVec
	requestDuration      *prometheus.HistogramVec
	upstreamDuration     *prometheus.HistogramVec
	upstreamErrors       map[string]prometheus.Counter
	fieldsRedacted       *prometheus.CounterVec
	recordsFiltered      *prometheus.CounterVec
	recordsReturned      *prometheus.CounterVec
	listPushdowns        *prometheus.CounterVec
	pushdownRefused      *prometheus.CounterVec
	readBudgetExceeded   *prometheus.CounterVec
	authentications      *prometheus.CounterVec
	stepUps              *prometheus.CounterVec
	activeSessions       prometheus.Gauge
	policyReloads        map[string]prometheus.Counter
	revisionInfo         *prometheus.GaugeVec
	logEvents            map[string]prometheus.Counter
	writeGuardRejections *prometheus.CounterVec

	revMu    sync.Mutex
	revision string
	revSet   bool
}

// New creates crmgate's collectors and registers them with reg; it panics
// if reg already holds collectors of the same names, as
// prometheus.MustRegister does, because that is a wiring bug found at
// start-up.
//
// roles are the configured role names that may appear as the "role" label;
// modules reports whether a module name is one the CRM profile knows and may
// therefore appear as the "module" label. A nil modules predicate knows no
// module, so every module is counted as "other".
func New(reg prometheus.Registerer, roles []string, modules func(string) bool) *Metrics {
	sorted := slices.Clone(roles)
	sorted = slices.DeleteFunc(sorted, func(r string) bool { return r == "" })
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	if modules == nil {
		modules = func(string) bool { return false }
	}
	m := &Metrics{
		roles:   sorted,
		modules: modules,
		reg:     reg,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_decisions_total",
			Help: "Policy decisions by module, action, outcome and the subject's configured role.",
		}, []string{"module", "action", "outcome", "role"}),
		decisionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crmgate_decision_duration_seconds",
			Help:    "Time spent evaluating the policy for one request.",
			Buckets: decisionBucket,
		}, []string{"outcome"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crmgate_request_duration_seconds",
			Help:    "Time of a whole request through crmgate, upstream included.",
			Buckets: requestBucket,
		}, []string{"module", "outcome"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crmgate_upstream_duration_seconds",
			Help:    "Time of one upstream exchange with the CRM, by status class.",
			Buckets: requestBucket,
		}, []string{"module", "code"}),
		fieldsRedacted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_fields_redacted_total",
			Help: "Field values removed or masked in responses.",
		}, []string{"module", "how"}),
		recordsFiltered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_records_filtered_total",
			Help: "Records dropped from responses by the record rule.",
		}, []string{"module"}),
		recordsReturned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_records_returned_total",
			Help: "Records returned to clients after the record rule.",
		}, []string{"module"}),
		listPushdowns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_list_pushdown_total",
			Help: "Lists by how much of the record rule the CRM's own query carried: exact, partial or none.",
		}, []string{"module", "level"}),
		pushdownRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_pushdown_refused_records_total",
			Help: "Records a list with the record rule pushed down exactly still returned and crmgate refused: the CRM and the policy disagree.",
		}, []string{"module"}),
		readBudgetExceeded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_read_budget_exceeded_total",
			Help: "Requests that found the subject's read budget spent: refused with 429, or records withheld from a list.",
		}, []string{"role"}),
		authentications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_authentications_total",
			Help: "Authentication attempts by method and result.",
		}, []string{"method", "result"}),
		activeSessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crmgate_active_sessions",
			Help: "Browser sessions currently active.",
		}),
		revisionInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crmgate_policy_revision_info",
			Help: "The policy revision in use (value 1, one series).",
		}, []string{"revision"}),
		writeGuardRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_write_guard_rejections_total",
			Help: "Writes refused because they touched read-only or non-visible fields.",
		}, []string{"module"}),
	}
	upstreamErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmgate_upstream_errors_total",
		Help: "Upstream exchanges that failed without a response, by kind.",
	}, []string{"kind"})
	stepUps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmgate_step_ups_total",
		Help: "Requests stepped up to multi-factor authentication.",
	}, []string{"method"})
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmgate_policy_reloads_total",
		Help: "Policy reloads by result.",
	}, []string{"result"})
	logEvents := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmgate_decision_log_events_total",
		Help: "Decision-log events by result: written, dropped (queue full) or failed (sink error).",
	}, []string{"result"})

	// Series with fixed label sets are created up front so that dashboards
	// and alerts (rate(...{result="dropped"}[5m]) > 0) see a zero rather than
	// no data, and so that hot paths skip the label lookup.
	m.upstreamErrors = curry(upstreamErrors, upstreamKinds)
	m.stepUps = stepUps
	for _, method := range stepUpMethods {
		stepUps.WithLabelValues(method)
	}
	m.policyReloads = curry(reloads, reloadResults)
	m.logEvents = curry(logEvents, logResults)
	for _, method := range authMethods {
		for _, result := range authResults {
			m.authentications.WithLabelValues(method, result)
		}
	}

	reg.MustRegister(
		m.decisions, m.decisionDuration, m.requestDuration, m.upstreamDuration,
		upstreamErrors, m.fieldsRedacted, m.recordsFiltered, m.recordsReturned,
		m.listPushdowns, m.pushdownRefused, m.readBudgetExceeded,
		m.authentications, stepUps, m.activeSessions, reloads, m.revisionInfo,
		logEvents, m.writeGuardRejections,
	)
	return m
}

func curry(vec *prometheus.CounterVec, values []string) map[string]prometheus.Counter {
	out := make(map[string]prometheus.Counter, len(values))
	for _, v := range values {
		out[v] = vec.WithLabelValues(v)
	}
	return out
}

// RoleLabel returns the "role" label value for a subject holding roles: the
// first configured role (in sorted order) the subject holds, "other" when it
// holds roles none of which is configured, and "none" when it holds none. The
// choice is deterministic so that one subject always lands in one series.
func (m *Metrics) RoleLabel(roles []string) string {
	if len(roles) == 0 {
		return LabelNone
	}
	if m == nil {
		return LabelOther
	}
	best := ""
	for _, r := range roles {
		if (best == "" || r < best) && m.roleConfigured(r) {
			best = r
		}
	}
	if best == "" {
		return LabelOther
	}
	return best
}

func (m *Metrics) roleConfigured(r string) bool {
	_, ok := slices.BinarySearch(m.roles, r)
	return ok
}

// ModuleLabel returns the "module" label value: the module itself when the
// profile knows it, "none" when empty, and "other" otherwise.
func (m *Metrics) ModuleLabel(module string) string {
	switch {
	case module == "":
		return LabelNone
	case m != nil && m.modules(module):
		return module
	default:
		return LabelOther
	}
}

// ActionLabel returns the "action" label value: one of the built-in actions
// (list read create update delete export relate), "none" when empty, and
// "other" for anything a profile adds.
func ActionLabel(action string) string {
	return bounded(action, actions)
}

// OutcomeLabel returns the "outcome" label value. An unknown outcome is a
// caller bug, and it is counted as "error" so that it shows up where
// failures are watched rather than in a series nobody alerts on.
func OutcomeLabel(outcome string) string {
	if slices.Contains(outcomes, outcome) {
		return outcome
	}
	return OutcomeError
}

func bounded(v string, set []string) string {
	switch {
	case v == "":
		return LabelNone
	case slices.Contains(set, v):
		return v
	default:
		return LabelOther
	}
}

// ObserveDecision counts one policy decision and records how long the
// evaluation took.
func (m *Metrics) ObserveDecision(module, action, outcome string, roles []string, d time.Duration) {
	if m == nil {
		return
	}
	outcome = OutcomeLabel(outcome)
	m.decisions.WithLabelValues(m.ModuleLabel(module), ActionLabel(action), outcome, m.RoleLabel(roles)).Inc()
	m.decisionDuration.WithLabelValues(outcome).Observe(d.Seconds())
}

// ObserveRequest records the duration of a whole request through crmgate.
func (m *Metrics) ObserveRequest(module, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.requestDuration.WithLabelValues(m.ModuleLabel(module), OutcomeLabel(outcome)).Observe(d.Seconds())
}

// ObserveUpstream records one upstream exchange. With a non-nil err the
// exchange is counted under code "error" and its cause is classified (see
// UpstreamErrorKind); otherwise status gives the code class. A status outside
// 200–599 without an error is also counted as "error": crmgate forwards only
// final responses, so it cannot be a valid answer.
func (m *Metrics) ObserveUpstream(module string, status int, err error, d time.Duration) {
	if m == nil {
		return
	}
	code := "error"
	if err != nil {
		m.upstreamErrors[UpstreamErrorKind(err)].Inc()
	} else if status >= 200 && status <= 599 {
		code = upstreamCodes[status/100-2]
	}
	m.upstreamDuration.WithLabelValues(m.ModuleLabel(module), code).Observe(d.Seconds())
}

// UpstreamErrorKind classifies an upstream error as "canceled" (the client
// went away: context.Canceled), "connect" (a dial failed, including by its
// own timeout: the CRM was never reached), "timeout" (context deadline or a
// network timeout after connecting) or "protocol" (anything else, such as a
// malformed response or a connection reset mid-exchange).
func UpstreamErrorKind(err error) string {
	if errors.Is(err, context.Canceled) {
		return UpstreamCanceled
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return UpstreamConnect
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return UpstreamTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return UpstreamTimeout
	}
	return UpstreamProtocol
}

// RedactedFields counts n field values redacted in a response; how is one of
// hidden, masked, not_visible (anything else is counted as "other").
func (m *Metrics) RedactedFields(module, how string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.fieldsRedacted.WithLabelValues(m.ModuleLabel(module), bounded(how, redactHows)).Add(float64(n))
}

// ReadBudgetExceeded counts a request that found its subject's read budget
// spent.
func (m *Metrics) ReadBudgetExceeded(roles []string) {
	if m == nil {
		return
	}
	m.readBudgetExceeded.WithLabelValues(m.RoleLabel(roles)).Inc()
}

// RecordsFiltered counts the records one response returned and the records
// the record rule dropped from it.
func (m *Metrics) RecordsFiltered(module string, returned, filtered int) {
	if m == nil {
		return
	}
	label := m.ModuleLabel(module)
	if returned > 0 {
		m.recordsReturned.WithLabelValues(label).Add(float64(returned))
	}
	if filtered > 0 {
		m.recordsFiltered.WithLabelValues(label).Add(float64(filtered))
	}
}

// Pushdown levels, the label values of ListPushdown.
const (
	PushdownExact   = "exact"
	PushdownPartial = "partial"
	PushdownNone    = "none"
)

// ListPushdown counts one list by its pushdown level; refused are the
// records an exact pushdown returned that the record rule refused.
func (m *Metrics) ListPushdown(module, level string, refused int) {
	if m == nil {
		return
	}
	switch level {
	case PushdownExact, PushdownPartial, PushdownNone:
	default:
		level = "other"
	}
	label := m.ModuleLabel(module)
	m.listPushdowns.WithLabelValues(label, level).Inc()
	if refused > 0 {
		m.pushdownRefused.WithLabelValues(label).Add(float64(refused))
	}
}

// Authentication counts one authentication attempt. method is bearer,
// session, login or backchannel; result is success, failure or missing.
// Values outside those sets are counted as "other".
func (m *Metrics) Authentication(method, result string) {
	if m == nil {
		return
	}
	m.authentications.WithLabelValues(bounded(method, authMethods), bounded(result, authResults)).Inc()
}

// StepUp counts one request stepped up to MFA; method is browser or api
// (anything else is counted as "other").
func (m *Metrics) StepUp(method string) {
	if m == nil {
		return
	}
	m.stepUps.WithLabelValues(bounded(method, stepUpMethods)).Inc()
}

// SetActiveSessions sets the number of active browser sessions.
func (m *Metrics) SetActiveSessions(n int) {
	if m == nil {
		return
	}
	m.activeSessions.Set(float64(n))
}

// WatchSessionCache exposes a Redis session store's replica-local cache:
// whether it serves (ops alert when a replica reads through for long) and
// how session lookups were answered.
func (m *Metrics) WatchSessionCache(serving func() bool, hits, misses func() uint64) {
	if m == nil {
		return
	}
	lookups := func(result string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "crmgate_session_cache_lookups_total",
			Help:        "Session lookups on this replica by result: hit (answered from the replica-local cache) or miss (read from Redis).",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(f()) })
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "crmgate_session_cache_serving",
			Help: "1 when this replica's session cache is in sync with Redis and serves, 0 while it reads every session from Redis.",
		}, func() float64 {
			if serving() {
				return 1
			}
			return 0
		}),
		lookups("hit", hits), lookups("miss", misses),
	)
}

// AddActiveSessions adjusts the number of active sessions by delta, for
// stores that track creation and expiry rather than a total.
func (m *Metrics) AddActiveSessions(delta int) {
	if m == nil {
		return
	}
	m.activeSessions.Add(float64(delta))
}

// PolicyReload counts one policy reload: a success when err is nil, a
// failure otherwise.
func (m *Metrics) PolicyReload(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.policyReloads[ReloadFailure].Inc()
		return
	}
	m.policyReloads[ReloadSuccess].Inc()
}

// SetRevision makes rev the one series of crmgate_policy_revision_info; the
// previous revision's series is deleted, so a query never sees two
// revisions at once. An empty revision is reported as "none".
func (m *Metrics) SetRevision(rev string) {
	if m == nil {
		return
	}
	// A label value must be valid UTF-8 or the client library panics, and a
	// bundle's revision string is outside crmgate's control.
	rev = strings.ToValidUTF8(rev, "\uFFFD")
	if rev == "" {
		rev = LabelNone
	}
	m.revMu.Lock()
	defer m.revMu.Unlock()
	if m.revSet && m.revision == rev {
		return
	}
	if m.revSet {
		m.revisionInfo.DeleteLabelValues(m.revision)
	}
	m.revisionInfo.WithLabelValues(rev).Set(1)
	m.revision, m.revSet = rev, true
}

// DecisionLogEvents counts n decision-log events with result written,
// dropped or failed. Any other result is counted as failed, so that an event
// is never silently unaccounted for.
func (m *Metrics) DecisionLogEvents(result string, n int) {
	if m == nil || n <= 0 {
		return
	}
	c, ok := m.logEvents[result]
	if !ok {
		c = m.logEvents[LogFailed]
	}
	c.Add(float64(n))
}

// WriteGuardRejection counts one write refused because it touched read-only
// or non-visible fields.
func (m *Metrics) WriteGuardRejection(module string) {
	if m == nil {
		return
	}
	m.writeGuardRejections.WithLabelValues(m.ModuleLabel(module)).Inc()
}
