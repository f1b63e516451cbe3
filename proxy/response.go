package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/policy/cond"
	"github.com/crmgate/crmgate/proxy/profile"
	"github.com/crmgate/crmgate/proxy/redact"
)

// errResponseUninspectable is returned (wrapped in a Problem) when the CRM's
// answer cannot be checked: crmgate never passes on what it could not read.
func errResponseUninspectable(cause error) *Problem {
	return &Problem{Status: http.StatusBadGateway, Kind: "upstream-response", Title: "CRM response refused",
		Detail: "crmgate could not inspect the CRM's response, so it was not passed on.", Outcome: OutcomeError,
		Reason: "uninspectable response", Cause: cause}
}

// errResponseBody classifies a failed read of the CRM's answer: a body that
// stopped arriving until upstream.timeout ran out is the CRM timing out
// (504, as for a CRM that never answered), anything else a response crmgate
// could not inspect (502). The deadline is read from the exchange's context
// because the transport reports it as a closed connection.
func errResponseBody(ctx context.Context, err error) *Problem {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return upstreamErrorProblem(errors.Join(ctx.Err(), err))
	}
	if errors.As(err, &ne) && ne.Timeout() {
		return upstreamErrorProblem(err)
	}
	return errResponseUninspectable(err)
}

func errRecordNotFound() *Problem {
	return &Problem{Status: http.StatusNotFound, Kind: "not-found", Title: "Not found",
		Detail: "No such record.", Outcome: OutcomeDeny, Reason: "record rule denied"}
}

// enforceResponse rewrites the CRM's answer according to the decision:
// hidden fields removed, masked fields masked, list records the subject may
// not see dropped. Lists stream through; a single record is held (bounded)
// so a record the subject may not see becomes a 404 before any byte is sent.
func (h *Handler) enforceResponse(x *exchange, res *http.Response) error {
	res.Header.Del("ETag") // the body changes; a stale validator would lie
	if res.StatusCode == http.StatusSwitchingProtocols {
		// crmgate never asks to switch protocols; a 101 would turn the
		// connection into a tunnel to the CRM that nothing inspects.
		_ = res.Body.Close()
		return errResponseUninspectable(errors.New("crm switched protocols"))
	}
	if res.Request.Method == http.MethodHead || res.StatusCode == http.StatusNoContent ||
		res.StatusCode == http.StatusNotModified || res.StatusCode < 200 {
		return nil
	}
	res.Body = newBufferedBody(res.Body)
	body, err := decodedBody(res)
	if err != nil {
		_ = res.Body.Close()
		return errResponseUninspectable(err)
	}
	if !isJSON(res.Header.Get("Content-Type")) {
		// An empty body needs no inspection; anything else that is not JSON
		// (an HTML error page, a CSV export) might carry any field.
		var one [1]byte
		if n, _ := io.ReadFull(body, one[:]); n == 0 {
			_ = res.Body.Close()
			res.Body = http.NoBody
			res.ContentLength = 0
			res.Header.Del("Content-Length")
			return nil
		}
		_ = res.Body.Close()
		return errResponseUninspectable(errors.New("non-json response body: " + res.Header.Get("Content-Type")))
	}

	mode, rule, err := h.responseMode(x, res.StatusCode)
	if err != nil {
		return err
	}
	fd := x.fieldDecision()
	plan := redact.Plan{
		Shape:          h.o.Profile.ShapeFor(x.responseModule()),
		Hidden:         fd.HiddenFields,
		Masked:         fd.MaskedFields,
		Visible:        fd.VisibleFields,
		VisibleDefined: fd.VisibleDefined,
		HashKey:        h.o.HashKey,
		MaxRecordIDs:   h.o.MaxRecordIDs,
		Offset:         queryOffset(x.r),
		Links:          h.linkRewriter(x),
	}
	if x.related != nil {
		// The link chose the module whose rules apply; a record of any
		// other module in the list is not judged by them but dropped.
		plan.RecordTypes = h.o.Profile.RecordTypes(x.related.module)
	}
	if rule != nil {
		plan.Record = rule
		// The CRM counted only what the rule allows: its totals are the
		// subject's and pass through.
		plan.KeepTotals = x.pushed && x.pushdown == cond.Exact && mode == redact.ModeList
	}
	if x.meter != nil && (mode == redact.ModeList || (mode == redact.ModeRecord && rule != nil)) {
		plan.Admit = x.meter.Take
	}
	compiled, err := plan.Compile()
	if err != nil {
		return errPolicy(err)
	}
	res.Header.Del("Content-Length")
	res.ContentLength = -1

	if mode == redact.ModeRecord {
		out := heldBuffers.Get().(*bytes.Buffer)
		stats, err := compiled.Transform(out, body, mode)
		_ = res.Body.Close()
		x.setStats(stats)
		h.refundBudget(x)
		if err != nil {
			releaseHeld(out)
			if errors.Is(err, redact.ErrRecordDenied) {
				return errRecordNotFound()
			}
			if errors.Is(err, redact.ErrWithheld) {
				return h.budgetProblem(x)
			}
			return errResponseBody(res.Request.Context(), err)
		}
		setHeldBody(res, out)
		return nil
	}
	return h.streamResponse(x, res, body, compiled, mode)
}

// streamResponse transforms a list (or any other JSON body) on the fly. It
// waits for the first output byte before letting the headers go, so a body
// that turns out not to be what the profile says is refused with a clean
// error instead of a 200 followed by a broken stream. Output that ends
// within holdMax is sent whole with a Content-Length: most lists are that
// small, and a body in one piece spares the pipe hand-off, the chunked
// framing and a write to the client per response.
func (h *Handler) streamResponse(x *exchange, res *http.Response, body io.Reader, c *redact.Compiled, mode redact.Mode) error {
	pr, pw := io.Pipe()
	sw := &heldWriter{pw: pw, held: heldBuffers.Get().(*bytes.Buffer), first: make(chan struct{})}
	done := make(chan struct{})
	var transformErr error
	upstream := res.Body
	go func() {
		defer close(done)
		stats, err := c.Transform(sw, body, mode)
		_ = upstream.Close()
		x.setStats(stats)
		h.refundBudget(x)
		transformErr = err
		// A transform error after output started closes the pipe with it;
		// the reverse proxy then aborts the client connection, so a
		// truncated body is never mistaken for a complete one.
		pw.CloseWithError(err)
	}()
	x.respDone = done
	select {
	case <-sw.first:
		res.Body = pr
		return nil
	case <-done:
	}
	// The transform ended without streaming: everything it wrote, if it
	// succeeded, is in sw.held (the channel close orders these reads
	// after its writes).
	if transformErr != nil {
		sw.release()
		return errResponseBody(res.Request.Context(), transformErr)
	}
	setHeldBody(res, sw.held)
	sw.held = nil
	return nil
}

// setHeldBody makes a transformed body held in full the response's, with
// its Content-Length; the body returns the buffer when closed.
func setHeldBody(res *http.Response, buf *bytes.Buffer) {
	b := &heldBody{buf: buf}
	b.r.Reset(buf.Bytes())
	res.Body = b
	res.ContentLength = int64(buf.Len())
	res.Header.Set("Content-Length", strconv.Itoa(buf.Len()))
}

// holdMax is the most transformed output held back to be sent whole.
const holdMax = 64 << 10

// heldBuffers recycles the buffers of held bodies and records. A list's
// never grows past holdMax; a record's may, and is then not kept.
var heldBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func releaseHeld(b *bytes.Buffer) {
	if b.Cap() > 2*holdMax {
		return
	}
	b.Reset()
	heldBuffers.Put(b)
}

// heldWriter keeps the transform's output until it passes holdMax; from
// then on everything, the held part first, goes through the pipe and first
// is closed. Only the transform's goroutine writes.
type heldWriter struct {
	pw        *io.PipeWriter
	held      *bytes.Buffer
	streaming bool
	first     chan struct{}
}

func (h *heldWriter) Write(p []byte) (int, error) {
	if !h.streaming {
		if h.held.Len()+len(p) <= holdMax {
			return h.held.Write(p)
		}
		h.streaming = true
		close(h.first)
		// A pipe write returns once the reader has taken every byte, so
		// the buffer is free again after it.
		_, err := h.pw.Write(h.held.Bytes())
		h.release()
		if err != nil {
			return 0, err
		}
	}
	return h.pw.Write(p)
}

func (h *heldWriter) release() {
	if h.held != nil {
		releaseHeld(h.held)
		h.held = nil
	}
}

// heldBody is a held transform output as a response body; closing it
// returns the buffer.
type heldBody struct {
	r   bytes.Reader
	buf *bytes.Buffer
}

func (b *heldBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *heldBody) Close() error {
	b.r.Reset(nil)
	if b.buf != nil {
		releaseHeld(b.buf)
		b.buf = nil
	}
	return nil
}

// responseMode says how the body is read and which record rule applies.
func (h *Handler) responseMode(x *exchange, status int) (redact.Mode, redact.RecordRule, error) {
	if status >= 300 {
		// Error and redirect bodies are not records, but they may echo
		// field names and values: redact by name.
		return redact.ModeOther, nil, nil
	}
	switch x.match.Kind {
	case profile.KindList, profile.KindRelated:
		// A related list's records are judged by the related module's
		// record rule (x.recordInput).
		rule, err := h.recordRule(x)
		return redact.ModeList, rule, err
	case profile.KindRecord:
		if x.match.Action == policy.ActionRead {
			rule, err := h.recordRule(x)
			return redact.ModeRecord, rule, err
		}
		if x.match.Action == policy.ActionCreate || x.match.Action == policy.ActionUpdate {
			// The target was checked before the write; the answer is the
			// record as written, redacted by field.
			return redact.ModeRecord, nil, nil
		}
	}
	return redact.ModeOther, nil, nil
}

// recordRule compiles the record rule for this request once.
func (h *Handler) recordRule(x *exchange) (redact.RecordRule, error) {
	f := x.filter
	if f == nil {
		var err error
		if f, err = h.o.Policy.RecordFilter(x.r.Context(), x.recordInput()); err != nil {
			return nil, errPolicy(err)
		}
	}
	return safeRule{h.withQueryGuard(x, f)}, nil
}

// safeRule turns a panic in the record rule into an error. Lists are
// transformed on their own goroutine, where an unrecovered panic would take
// the whole proxy down; as an error it refuses this one response.
type safeRule struct{ redact.RecordRule }

func (s safeRule) Check(record map[string]any) (d policy.RecordDecision, err error) {
	defer func() {
		if v := recover(); v != nil {
			d, err = policy.RecordDecision{}, fmt.Errorf("record rule: panic: %v", v)
		}
	}()
	return s.RecordRule.Check(record)
}

// upstreamReaders are the read buffers of CRM bodies crmgate inspects. The
// decoders ask for a few KiB at a time; through the transport's 4 KiB
// buffer that was a read system call per 4 KiB, four times as many as the
// bare proxy's 32 KiB copies made for a 50-record list. With 32 KiB here
// each call takes whatever the socket holds.
var upstreamReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

// bufferedBody is a CRM body read through a pooled buffer, which Close
// returns. Only the goroutine that reads it closes it.
type bufferedBody struct {
	br   *bufio.Reader
	body io.ReadCloser
}

func newBufferedBody(body io.ReadCloser) *bufferedBody {
	br := upstreamReaders.Get().(*bufio.Reader)
	br.Reset(body)
	return &bufferedBody{br: br, body: body}
}

func (b *bufferedBody) Read(p []byte) (int, error) {
	if b.br == nil {
		return 0, errors.New("read after close")
	}
	return b.br.Read(p)
}

func (b *bufferedBody) Close() error {
	if b.br != nil {
		b.br.Reset(nil)
		upstreamReaders.Put(b.br)
		b.br = nil
	}
	return b.body.Close()
}

// decodedBody undoes a content coding crmgate can read, so redaction sees
// the real bytes; any other coding is refused rather than passed through
// unread.
func decodedBody(res *http.Response) (io.Reader, error) {
	enc := strings.ToLower(strings.TrimSpace(res.Header.Get("Content-Encoding")))
	res.Header.Del("Content-Encoding")
	switch enc {
	case "", "identity":
		return res.Body, nil
	case "gzip", "x-gzip":
		return gzip.NewReader(res.Body)
	case "deflate":
		return zlib.NewReader(res.Body)
	}
	return nil, errors.New("unsupported content encoding " + strconv.Quote(enc))
}

func isJSONMedia(mt string) bool {
	return mt == "application/json" || mt == "application/vnd.api+json" || strings.HasSuffix(mt, "+json")
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && isJSONMedia(mt)
}

// queryOffset is EspoCRM's list offset, which the redactor needs to tell
// whether more records follow a filtered page.
func queryOffset(r *http.Request) int {
	v := r.URL.Query().Get("offset")
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return n
}
