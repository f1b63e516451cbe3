package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/crmgate/crmgate/config"
)

// TestListBodiesHeldOrStreamed checks both ways a transformed list leaves
// crmgate: a small one whole, with a Content-Length, and a large one
// streamed while the CRM is still sending it, so no list is ever held
// whole in memory.
func TestListBodiesHeldOrStreamed(t *testing.T) {
	full, costs := espoProducts(t)
	var list struct {
		List []json.RawMessage `json:"list"`
	}
	if err := json.Unmarshal(full, &list); err != nil || len(list.List) == 0 {
		t.Fatalf("product list: %v", err)
	}
	// head is well past what crmgate may hold back; the rest of the list
	// comes only once the client has seen the start of the answer.
	var head bytes.Buffer
	head.WriteString(`{"total":-1,"list":[`)
	records := 0
	for head.Len() < 256<<10 {
		if records > 0 {
			head.WriteByte(',')
		}
		head.Write(list.List[records%len(list.List)])
		records++
	}
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("small") != "" {
			_, _ = w.Write(full)
			return
		}
		_, _ = w.Write(head.Bytes())
		_ = http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "]}")
	}))
	t.Cleanup(up.Close)
	e := newEnv(t, "espocrm", func(c *config.Config) { c.Upstream.URL = up.URL })

	get := func(query string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, e.proxy.URL+"/api/v1/Product"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.tokens["alice"])
		res, err := e.proxy.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = res.Body.Close() })
		return res
	}
	noBuyPrice := func(body []byte) {
		t.Helper()
		if bytes.Contains(body, []byte("costPrice")) {
			t.Fatal("the answer holds the hidden buy price field")
		}
		for _, re := range costs {
			if re.Match(body) {
				t.Fatalf("the answer holds a buy price (%s)", re)
			}
		}
	}

	t.Run("small list is sent whole", func(t *testing.T) {
		res := get("?small=1")
		body, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("status %d, read error %v: %.300s", res.StatusCode, err, body)
		}
		if res.ContentLength != int64(len(body)) || len(res.TransferEncoding) != 0 {
			t.Fatalf("Content-Length %d, Transfer-Encoding %v for a %d-byte body", res.ContentLength, res.TransferEncoding, len(body))
		}
		noBuyPrice(body)
		if !json.Valid(body) {
			t.Fatalf("not JSON: %.300s", body)
		}
	})

	t.Run("large list streams while the CRM still sends it", func(t *testing.T) {
		got := make(chan *http.Response, 1)
		go func() { got <- get("") }()
		var res *http.Response
		select {
		case res = <-got:
		case <-time.After(10 * time.Second):
			close(release)
			t.Fatal("no answer while the CRM was still sending: crmgate held the list back")
		}
		if res.StatusCode != http.StatusOK || res.ContentLength != -1 {
			close(release)
			t.Fatalf("status %d, Content-Length %d: want a streamed 200", res.StatusCode, res.ContentLength)
		}
		start := make([]byte, 128<<10)
		if _, err := io.ReadFull(res.Body, start); err != nil {
			close(release)
			t.Fatalf("reading the first %d bytes before the CRM finished: %v", len(start), err)
		}
		close(release)
		rest, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		body := append(start, rest...)
		noBuyPrice(body)
		var out struct {
			List []map[string]any `json:"list"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("streamed list is not JSON: %v", err)
		}
		if len(out.List) != records {
			t.Fatalf("%d records in the answer, the CRM sent %d", len(out.List), records)
		}
	})
}
