package login

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/crmgate/crmgate/proxy/page"
	"github.com/crmgate/crmgate/proxy/session"
)

// adminListLimit bounds GET /admin/sessions without a user.
const adminListLimit = 1000

// AdminSession is one session as the admin API shows it: never the raw id
// or a token, only the hash (usable to revoke it) and facts about it.
type AdminSession struct {
	Hash      string    `json:"hash"`
	User      string    `json:"user"`
	CreatedAt time.Time `json:"created"`
	LastSeen  time.Time `json:"last_seen"`
	AMR       []string  `json:"amr"`
	ACR       string    `json:"acr,omitempty"`
	MFA       bool      `json:"mfa"`
}

// Admin returns the /admin/sessions handler for the admin listener (which
// puts it behind the admin token):
//
//	GET    /admin/sessions[?user=ID]   list sessions (all, up to 1000, or one user's)
//	DELETE /admin/sessions?user=ID     revoke every session of the user
//	DELETE /admin/sessions?id=HASH     revoke one session by its hash
//
// Revocations hold on every replica sharing the store from its next
// request on.
func Admin(store session.Store, log *zap.Logger) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	unavailable := func(w http.ResponseWriter, err error) {
		log.Warn("admin sessions", zap.Error(err))
		page.JSON(w, http.StatusServiceUnavailable, "session-store-unavailable", "Temporarily unavailable",
			"The session store cannot be reached.")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		user, hash := q.Get("user"), q.Get("id")
		switch r.Method {
		case http.MethodGet:
			var list []*session.Session
			var err error
			if user != "" {
				list, err = store.ListUser(r.Context(), user)
			} else {
				list, err = store.List(r.Context(), adminListLimit)
			}
			if err != nil {
				unavailable(w, err)
				return
			}
			out := make([]AdminSession, 0, len(list))
			for _, s := range list {
				out = append(out, AdminSession{Hash: s.Hash, User: s.Subject.ID, CreatedAt: s.CreatedAt.UTC(),
					LastSeen: s.LastSeen.UTC(), AMR: s.AMR, ACR: s.ACR, MFA: s.Subject.MFA})
			}
			writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
		case http.MethodDelete:
			switch {
			case (user == "") == (hash == ""):
				page.JSON(w, http.StatusBadRequest, "bad-request", "Bad request", "Give exactly one of user or id.")
			case user != "":
				n, err := store.RevokeUser(r.Context(), user)
				if err != nil {
					unavailable(w, err)
					return
				}
				log.Info("admin revoked user sessions", zap.String("user", user), zap.Int("sessions", n))
				writeJSON(w, http.StatusOK, map[string]any{"revoked": n, "user": user})
			default:
				if !validHash(hash) {
					page.JSON(w, http.StatusBadRequest, "bad-request", "Bad request", "id must be a session hash from the listing.")
					return
				}
				if err := store.DeleteHash(r.Context(), hash); err != nil {
					if errors.Is(err, session.ErrUnavailable) {
						unavailable(w, err)
						return
					}
					page.JSON(w, http.StatusBadRequest, "bad-request", "Bad request", "The session could not be revoked.")
					return
				}
				log.Info("admin revoked session", zap.String("session", hash[:12]))
				writeJSON(w, http.StatusOK, map[string]any{"revoked": 1, "id": hash})
			}
		default:
			w.Header().Set("Allow", "GET, DELETE")
			page.JSON(w, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "Use GET or DELETE.")
		}
	})
}

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		page.JSON(w, http.StatusInternalServerError, "internal", "Internal error", "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
