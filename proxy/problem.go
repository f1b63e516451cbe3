package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Outcomes recorded in the decision log and the decisions metric.
const (
	OutcomeAllow  = "allow"
	OutcomeDeny   = "deny"
	OutcomeStepUp = "step_up"
	OutcomeError  = "error"
)

// Problem is an error that knows how it is shown to the client (RFC 9457)
// and what is only logged. Detail must be safe to show: it never carries an
// internal error string; Cause does, and goes to the decision log only.
type Problem struct {
	Status int
	// Kind is the stable last part of the problem type URI.
	Kind   string
	Title  string
	Detail string
	// Outcome is the decision outcome this problem records.
	Outcome string
	// Reason is a short machine-friendly reason for logs and metrics.
	Reason string
	// Fields names the fields a refused write touched (safe to show: they
	// are the client's own field names).
	Fields []string
	// Challenge, when set, is sent as WWW-Authenticate.
	Challenge string
	// retryAfter, when set, is sent as Retry-After (seconds).
	retryAfter string
	Cause      error
	// respond, when set, answers instead of the problem body (the login
	// redirect).
	respond func(w http.ResponseWriter, r *http.Request)
}

func (p *Problem) Error() string {
	if p.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", p.Kind, p.Reason, p.Cause)
	}
	return p.Kind + ": " + p.Reason
}

func (p *Problem) Unwrap() error { return p.Cause }

// problemTypePrefix makes problem types stable URNs: clients may switch on
// them, so they never change once published.
const problemTypePrefix = "urn:crmgate:problem:"

type problemBody struct {
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Status     int      `json:"status"`
	Detail     string   `json:"detail,omitempty"`
	Instance   string   `json:"instance,omitempty"`
	DecisionID string   `json:"decision_id"`
	Fields     []string `json:"fields,omitempty"`
}

// asProblem turns any error into the Problem shown to the client. An error
// that is not already a Problem is an internal failure: the client learns
// nothing of it beyond a 500 and the decision id.
func asProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return &Problem{Status: http.StatusInternalServerError, Kind: "internal", Title: "Internal error",
		Detail: "crmgate could not complete the request.", Outcome: OutcomeError, Reason: "internal", Cause: err}
}

// writeProblem is the one place an error becomes a response.
func writeProblem(w http.ResponseWriter, p *Problem, decisionID, instance string) {
	h := w.Header()
	for k := range h {
		// Headers set earlier (by a half-done upstream exchange) must not
		// leak into the error response.
		delete(h, k)
	}
	if p.Challenge != "" {
		h.Set("WWW-Authenticate", p.Challenge)
	}
	if p.retryAfter != "" {
		h.Set("Retry-After", p.retryAfter)
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	body, err := json.Marshal(problemBody{
		Type: problemTypePrefix + p.Kind, Title: p.Title, Status: p.Status, Detail: p.Detail,
		Instance: instance, DecisionID: decisionID, Fields: p.Fields,
	})
	if err != nil {
		// Only strings and ints go in: this cannot fail, but never send an
		// empty 200 if it somehow does.
		body = []byte(`{"type":"` + problemTypePrefix + `internal","status":500}`)
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// Problems crmgate produces. Constructors keep titles and kinds stable.

func errUnauthenticated(reason string, cause error) *Problem {
	return &Problem{Status: http.StatusUnauthorized, Kind: "unauthenticated", Title: "Authentication required",
		Detail: "Sign in or send a valid bearer token.", Outcome: OutcomeDeny, Reason: reason,
		Challenge: `Bearer realm="crmgate"`, Cause: cause}
}

func errInvalidToken(cause error) *Problem {
	return &Problem{Status: http.StatusUnauthorized, Kind: "invalid-token", Title: "Invalid credentials",
		Detail: "The bearer token is not valid for this service.", Outcome: OutcomeDeny, Reason: "invalid token",
		Challenge: `Bearer realm="crmgate", error="invalid_token"`, Cause: cause}
}

func errForbidden(reason string) *Problem {
	return &Problem{Status: http.StatusForbidden, Kind: "forbidden", Title: "Access denied",
		Detail: "The access policy does not allow this request.", Outcome: OutcomeDeny, Reason: reason}
}

func errNotFound(reason string, cause error) *Problem {
	return &Problem{Status: http.StatusNotFound, Kind: "not-found", Title: "Not found",
		Detail: "crmgate does not know this route.", Outcome: OutcomeDeny, Reason: reason, Cause: cause}
}

func errBadRequest(detail, reason string, cause error) *Problem {
	return &Problem{Status: http.StatusBadRequest, Kind: "bad-request", Title: "Bad request",
		Detail: detail, Outcome: OutcomeDeny, Reason: reason, Cause: cause}
}

func errPolicy(cause error) *Problem {
	return &Problem{Status: http.StatusInternalServerError, Kind: "policy-error", Title: "Policy error",
		Detail: "The access policy could not be evaluated, so the request was refused.", Outcome: OutcomeError,
		Reason: "policy error", Cause: cause}
}

func errSessionStore(cause error) *Problem {
	return &Problem{Status: http.StatusServiceUnavailable, Kind: "session-store-unavailable", Title: "Temporarily unavailable",
		Detail: "Sessions cannot be checked right now; try again shortly.", Outcome: OutcomeError,
		Reason: "session store unavailable", Cause: cause}
}

// errStepUp is the RFC 9470 challenge for API clients.
func errStepUp(acr string, maxAge int64) *Problem {
	var b strings.Builder
	b.WriteString(`Bearer realm="crmgate", error="insufficient_user_authentication", error_description="multi-factor authentication is required"`)
	if acr != "" {
		fmt.Fprintf(&b, `, acr_values="%s"`, acr)
	}
	if maxAge > 0 {
		fmt.Fprintf(&b, `, max_age=%d`, maxAge)
	}
	return &Problem{Status: http.StatusUnauthorized, Kind: "step-up-required", Title: "Multi-factor authentication required",
		Detail:  "This request needs multi-factor authentication; authenticate again with a stronger method.",
		Outcome: OutcomeStepUp, Reason: "mfa required", Challenge: b.String()}
}
