package budget

import (
	"context"
	"errors"
	"time"
)

// Meter accounts the records of one request. Begin reserves before the CRM
// is asked; Take admits each record as the response is written, reserving
// more in chunks when the first reservation runs out; Close refunds what was
// reserved but not sent. Begin and Close run on the request's goroutine,
// Take on the response transform's, which the caller orders between them.
type Meter struct {
	store   Store
	subject string
	limit   int64
	per     time.Duration
	chunk   int64
	// allowOnError lets records through when the store fails (config
	// budgets.on_store_error: allow); otherwise they are withheld.
	allowOnError bool
	ctx          context.Context

	held     int64 // reserved and not yet sent
	sent     int64
	withheld int64
	spent    bool
	err      error
	last     Grant
	windows  map[string]int64 // reserved per window, for refunds
	refunded int64
}

// NewMeter returns a meter for subject's budget of limit records per window
// of per; chunk (at least 1) is how many records a list reserves per round
// trip to the store.
func NewMeter(ctx context.Context, s Store, subject string, limit int64, per time.Duration, chunk int64, allowOnError bool) *Meter {
	return &Meter{store: s, subject: subject, limit: limit, per: per, chunk: max(chunk, 1), allowOnError: allowOnError, ctx: ctx}
}

// Begin reserves up to want records before the request is forwarded. It
// reports false when the window is spent (the request must be refused, see
// Reset), and the store's error when it could not be asked.
func (m *Meter) Begin(want int64) (bool, error) {
	if err := m.reserve(max(want, 1)); err != nil {
		return false, err
	}
	return m.held > 0, nil
}

func (m *Meter) reserve(want int64) error {
	g, err := m.store.Reserve(m.ctx, m.subject, m.limit, m.per, want)
	if err != nil {
		m.err = err
		return err
	}
	m.last = g
	m.held += g.Granted
	if g.Granted > 0 {
		if m.windows == nil {
			m.windows = make(map[string]int64, 1)
		}
		m.windows[g.Window] += g.Granted
	}
	if g.Granted < want {
		m.spent = true
	}
	return nil
}

// Take admits one record: true when it may be sent. Once the window is spent
// every further record is withheld without asking the store again. A store
// failure withholds the record, or admits it with allowOnError.
func (m *Meter) Take() bool {
	if m.held == 0 && !m.spent && m.err == nil {
		_ = m.reserve(m.chunk)
	}
	if m.held > 0 {
		m.held--
		m.sent++
		return true
	}
	if m.err != nil && m.allowOnError {
		m.sent++
		return true
	}
	m.withheld++
	return false
}

// Close refunds what was reserved and not sent. ctx bounds the refund; the
// request's own context may already be done.
func (m *Meter) Close(ctx context.Context) error {
	var errs []error
	// Records sent are charged to the windows they were reserved in, in
	// any order: only the total handed back matters, and a window that has
	// ended ignores its refund.
	left := m.sent
	for win, n := range m.windows {
		use := min(n, left)
		left -= use
		if back := n - use; back > 0 {
			if err := m.store.Refund(ctx, m.subject, win, back); err != nil {
				errs = append(errs, err)
			} else if win == m.last.Window {
				m.refunded += back
			}
		}
	}
	m.windows = nil
	m.held = 0
	return errors.Join(errs...)
}

// Sent is how many records were admitted.
func (m *Meter) Sent() int64 { return m.sent }

// Withheld is how many records were held back because the budget was spent
// (or the store failed).
func (m *Meter) Withheld() int64 { return m.withheld }

// Spent reports whether the window ran out during this request.
func (m *Meter) Spent() bool { return m.spent }

// Remaining is the window's budget left as this request saw it last: after
// its last reservation and, once Close ran, its refund.
func (m *Meter) Remaining() int64 { return max(m.limit-m.last.Used+m.refunded, 0) }

// Reset is how long until the window of the last reservation ends.
func (m *Meter) Reset() time.Duration { return m.last.Reset }

// Err is the store's error, if any reservation failed.
func (m *Meter) Err() error { return m.err }
