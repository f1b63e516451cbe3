// Package budget counts the records each subject reads against the read
// budget the policy sets (read_budget), in a store every replica shares
// (Redis) or in memory for a single node.
//
// Counting is by reservation, so that a budget of N lets exactly N records
// out however requests are spread over pages, replicas and sessions: before
// a record leaves crmgate its place is taken from the subject's window in
// one atomic step of the store, and what a request reserved but did not send
// is handed back when it ends. A request that reserves nothing because the
// window is spent is refused before the CRM is asked.
package budget

import (
	"context"
	"errors"
	"time"
)

// ErrStore wraps every failure to reach or use the budget store.
var ErrStore = errors.New("budget store")

// Grant is a store's answer to a reservation.
type Grant struct {
	// Granted is how many of the records asked for were reserved (0 when
	// the window is spent).
	Granted int64
	// Used is the window's count after the reservation.
	Used int64
	// Reset is how long until the window ends and the budget is whole again.
	Reset time.Duration
	// Window identifies the window the reservation was taken from, so a
	// refund never lands in a later one.
	Window string
}

// Store keeps one counting window per subject. Implementations are safe for
// concurrent use, and Reserve is atomic across everything sharing the store.
type Store interface {
	// Reserve takes up to want records from subject's current window of
	// length per holding at most limit records, starting a window when
	// none runs.
	Reserve(ctx context.Context, subject string, limit int64, per time.Duration, want int64) (Grant, error)
	// Refund hands n reserved but unsent records back to window, if that
	// window still runs.
	Refund(ctx context.Context, subject, window string, n int64) error
}
