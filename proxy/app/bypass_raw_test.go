package app_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// rawAttack is a request Go's client will not send: written byte for byte
// to crmgate's listener, served exactly as `serve` serves it (App.Serve:
// header limits and timeouts included).
type rawAttack struct {
	name string
	// req returns the bytes to write; host is the listener's address and
	// tok alice's bearer token.
	req func(host, tok string) string
	// want are the statuses the client must get, in order; after them the
	// server must send nothing more.
	want  []int
	reach func(t *testing.T, got []seen)
	leak  []string
}

// serveMain runs the app's own Serve on a fresh listener and returns its
// address.
func serveMain(t *testing.T, e *env) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.app.Serve(ctx, ln, adm) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// exchangeRaw writes req and reads responses until n have arrived, then
// checks that nothing more follows.
func exchangeRaw(t *testing.T, addr, req string, n int) ([]int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("write: %v (the server may have closed early)", err)
	}
	br := bufio.NewReader(conn)
	var statuses []int
	var bodies strings.Builder
	for i := 0; ; i++ {
		wait := 5 * time.Second
		if i >= n {
			wait = 300 * time.Millisecond
		}
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		statuses = append(statuses, res.StatusCode)
		fmt.Fprintf(&bodies, "%d %v\n%s\n", res.StatusCode, res.Header, b)
	}
	return statuses, bodies.String()
}

func runRaw(t *testing.T, crm string, cases []rawAttack) {
	e := newEnv(t, crm)
	addr := serveMain(t, e)
	for _, a := range cases {
		t.Run(a.name, func(t *testing.T) {
			e.t = t
			e.upstream.reset()
			got, bodies := exchangeRaw(t, addr, a.req(addr, e.tokens["alice"]), len(a.want))
			if !slices.Equal(got, a.want) {
				t.Errorf("statuses = %v, want %v\n%.1500s", got, a.want, bodies)
			}
			for _, s := range append(slices.Clip(a.leak), secretMarkers...) {
				if strings.Contains(bodies, s) {
					t.Errorf("response leaks %q", s)
				}
			}
			up := e.upstream.crmRequests()
			checkUpstreamHeaders(t, e, up)
			for _, s := range up {
				if strings.Contains(s.Path, "Users") || strings.Contains(string(s.Body), "HTTP/1.1") {
					t.Errorf("a smuggled request reached the CRM: %s %s body %q", s.Method, s.Path, s.Body)
				}
			}
			if a.reach == nil {
				if len(up) != 0 {
					t.Errorf("%d request(s) reached the CRM, first %s %s", len(up), up[0].Method, up[0].Path)
				}
			} else {
				a.reach(t, up)
			}
		})
	}
}

// TestBypassRaw sends what only a hand-written client can: request lines
// naming other hosts, framing that two HTTP parsers could read
// differently, headers past the server's limits.
func TestBypassRaw(t *testing.T) {
	for _, c := range []struct {
		name  string
		cases []rawAttack
	}{
		{"host", rawHostAttacks()},
		{"smuggle", smuggleAttacks()},
		{"oversize", rawOversizeAttacks()},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runRaw(t, "suitecrm8", c.cases)
		})
	}
}

const smuggled = "GET /Api/V8/module/Users HTTP/1.1\r\nHost: x\r\n\r\n"

func get(path string, extra ...string) func(host, tok string) string {
	return func(host, tok string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + tok + "\r\n" + strings.Join(extra, "") + "\r\n"
	}
}

func rawHostAttacks() []rawAttack {
	line := func(target string, hostHeader func(host string) string) func(host, tok string) string {
		return func(host, tok string) string {
			return "GET " + target + " HTTP/1.1\r\nHost: " + hostHeader(host) + "\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
		}
	}
	same := func(h string) string { return h }
	evil := func(string) string { return "evil.example" }
	return []rawAttack{
		{name: "absolute-form/another host than the Host header", req: line("http://evil.example/Api/V8/module/Accounts", same), want: []int{400}},
		{name: "absolute-form/https to another host", req: line("https://evil.example/Api/V8/module/Accounts", same), want: []int{400}},
		{name: "absolute-form/even when the Host header agrees", req: line("http://evil.example/Api/V8/module/Accounts", evil), want: []int{400}},
		{name: "absolute-form/userinfo is no identity", req: func(host, tok string) string {
			return line("http://sam@"+host+"/Api/V8/module/Users", same)(host, tok)
		}, want: []int{400}, leak: staffOnly},
		{name: "absolute-form/to the crm's token endpoint", req: line("http://crm.internal/Api/access_token", func(string) string { return "crm.internal" }), want: []int{400}},
		{name: "absolute-form/to the proxy itself", req: func(host, tok string) string {
			return line("http://"+host+"/Api/V8/module/Accounts", same)(host, tok)
		}, want: []int{400}},
		{name: "host/two Host headers", req: func(host, tok string) string {
			return "GET /Api/V8/module/Accounts HTTP/1.1\r\nHost: " + host + "\r\nHost: crm.internal\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
		}, want: []int{400}},
		{name: "host/missing on HTTP/1.1", req: func(_, tok string) string {
			return "GET /Api/V8/module/Accounts HTTP/1.1\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
		}, want: []int{400}},
		{name: "request-line/CONNECT authority form", req: line("crm.internal:443", func(string) string { return "crm.internal:443" }), want: []int{400}},
		// Go's server answers OPTIONS * itself, empty, without the handler.
		{name: "request-line/OPTIONS asterisk", req: func(host, tok string) string {
			return "OPTIONS * HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
		}, want: []int{200}},
		{name: "request-line/relative target without a slash", req: line("Api/V8/module/Users", same), want: []int{400}},
		{name: "request-line/raw backslashes", req: line(`/Api/V8/module/Accounts\..\Users`, same), want: []int{400}},
		{name: "request-line/raw utf-8 lookalike", req: line("/Api/V8/module/Us\xd0\xb5rs", same), want: []int{400}},
		{name: "request-line/raw fullwidth letters", req: line("/Api/V8/module/\xef\xbc\xb5sers", same), want: []int{400}},
		{name: "request-line/IIS %u escape", req: line("/Api/V8/module/Accounts/%u002e%u002e/Users", same), want: []int{400}},
		{name: "request-line/fragment hides a dotdot", req: line("/Api/V8/module/Accounts#/../Users", same), want: []int{400}},
		{name: "request-line/raw tab in the path", req: line("/Api/V8/module/Us\ters", same), want: []int{400}},
		{name: "request-line/lower-case protocol", req: func(host, tok string) string {
			return "GET /Api/V8/module/Users http/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
		}, want: []int{400}},
		{name: "request-line/HTTP/2.0 on an HTTP/1 listener", req: func(host, tok string) string {
			return "GET /Api/V8/module/Users HTTP/2.0\r\nHost: " + host + "\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
		}, want: []int{505}},
		{name: "request-line/lower-case method", req: func(host, tok string) string {
			return "delete /Api/V8/module/Leads/l-1 HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
		}, want: []int{405}},
	}
}

func smuggleAttacks() []rawAttack {
	post := func(headers, body string) func(host, tok string) string {
		return func(host, tok string) string {
			return "POST /Api/V8/module HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + tok +
				"\r\nContent-Type: application/json\r\n" + headers + "\r\n" + body
		}
	}
	getWith := func(headers, body string) func(host, tok string) string {
		return func(host, tok string) string {
			return "GET /Api/V8/module/Accounts HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + tok + "\r\n" + headers + "\r\n" + body
		}
	}
	chunkedSmuggle := "0\r\n\r\n" + smuggled
	create := `{"data":{"type":"Accounts","attributes":{"name":"x"}}}`
	return []rawAttack{
		// Go reads chunked when both are present. crmgate forwards only the
		// body it read, framed by its own Content-Length, so the CRM cannot
		// read the rest differently; the rest is a request of its own, and
		// one without credentials.
		{name: "cl-te/both, chunked body ends early", req: post(fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n", len(chunkedSmuggle)), chunkedSmuggle),
			want: []int{400, 401}},
		{name: "te-cl/both, content-length shorter than the chunks", req: post("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(create), create)), want: []int{201}, reach: func(t *testing.T, got []seen) {
			if len(got) != 1 || got[0].Method != "POST" || string(got[0].Body) != create {
				t.Fatalf("the CRM did not receive exactly the chunked body, re-framed: %+v", got)
			}
		}},
		{name: "cl/duplicated, conflicting", req: post("Content-Length: 4\r\nContent-Length: 60\r\n", create), want: []int{400}},
		{name: "cl/duplicated, equal, body hides a request", req: getWith("Content-Length: 44\r\nContent-Length: 44\r\n", smuggled), want: []int{400}},
		{name: "cl/comma list", req: post("Content-Length: 4, 60\r\n", create), want: []int{400}},
		{name: "cl/plus sign", req: post("Content-Length: +4\r\n", create), want: []int{400}},
		{name: "cl/negative", req: post("Content-Length: -1\r\n", create), want: []int{400}},
		{name: "cl/hex", req: post("Content-Length: 0x4\r\n", create), want: []int{400}},
		{name: "cl/body on a read hides a request", req: getWith(fmt.Sprintf("Content-Length: %d\r\n", len(smuggled)), smuggled), want: []int{400}},
		{name: "te/chunked on a read hides a request", req: getWith("Transfer-Encoding: chunked\r\n", fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)),
			want: []int{400}},
		{name: "te/xchunked", req: post("Transfer-Encoding: xchunked\r\nContent-Length: 4\r\n", create), want: []int{501}},
		{name: "te/chunked then identity", req: post("Transfer-Encoding: chunked, identity\r\n", chunkedSmuggle), want: []int{501}},
		{name: "te/identity", req: post("Transfer-Encoding: identity\r\n", create), want: []int{501}},
		{name: "te/two headers", req: post("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", chunkedSmuggle), want: []int{501}},
		{name: "te/space before the colon", req: post("Transfer-Encoding : chunked\r\n", chunkedSmuggle), want: []int{400}},
		{name: "te/vertical tab", req: post("Transfer-Encoding: \x0bchunked\r\n", chunkedSmuggle), want: []int{400}},
		// Go unfolds obs-fold: the fold is chunked, as for both parsers.
		{name: "te/obs-fold", req: post("Transfer-Encoding:\r\n chunked\r\n", chunkedSmuggle), want: []int{400, 401}},
		{name: "chunk/size overflow", req: post("Transfer-Encoding: chunked\r\n", "fffffffffffffffff1\r\n"+create+"\r\n0\r\n\r\n"), want: []int{400}},
		{name: "chunk/size with a plus", req: post("Transfer-Encoding: chunked\r\n", "+4\r\n{}  \r\n0\r\n\r\n"), want: []int{400}},
		// Unfolded, the override is part of X-Foo's value, and X-Foo is not
		// forwarded: the CRM gets a GET.
		{name: "header/obs-fold carries an override header", req: get("/Api/V8/module/Accounts/acc-1", "X-Foo: a\r\n X-HTTP-Method-Override: DELETE\r\n"),
			want: []int{200}, reach: reached("GET /Api/V8/module/Accounts/acc-1")},
		{name: "header/NUL in a value", req: get("/Api/V8/module/Accounts", "X-Foo: a\x00b\r\n"), want: []int{400}},
		{name: "header/bare CR in a value", req: get("/Api/V8/module/Accounts", "X-Foo: a\rX-HTTP-Method-Override: DELETE\r\n"), want: []int{400}},
		{name: "header/name with a space", req: get("/Api/V8/module/Accounts", "X-HTTP-Method-Override : DELETE\r\n"), want: []int{400}},
		{name: "pipeline/allowed then forbidden", req: func(host, tok string) string {
			return get("/Api/V8/module/Accounts")(host, tok) + get("/Api/V8/module/Users")(host, tok)
		}, want: []int{200, 403}, reach: reached("GET /Api/V8/module/Accounts"), leak: staffOnly},
		{name: "pipeline/smuggled request without credentials", req: func(host, tok string) string {
			return get("/Api/V8/module/Accounts")(host, tok) + smuggled
		}, want: []int{200, 401}, reach: reached("GET /Api/V8/module/Accounts"), leak: staffOnly},
		{name: "preface/HTTP/2 prior knowledge", req: func(string, string) string { return "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" }, want: []int{405}},
		{name: "line/bare LF line endings", req: func(host, tok string) string {
			return "GET /Api/V8/module/Users HTTP/1.1\nHost: " + host + "\nAuthorization: Bearer " + tok + "\n\n"
		}, want: []int{403}, leak: staffOnly},
	}
}

func rawOversizeAttacks() []rawAttack {
	return []rawAttack{
		{name: "header/70 KB header", req: get("/Api/V8/module/Accounts", "X-Big: "+strings.Repeat("a", 70<<10)+"\r\n"), want: []int{431}},
		{name: "header/many small headers", req: get("/Api/V8/module/Accounts", strings.Repeat("X-A: b\r\n", 10000)), want: []int{431}},
		{name: "header/70 KB cookie", req: get("/Api/V8/module/Accounts", "Cookie: a="+strings.Repeat("b", 70<<10)+"\r\n"), want: []int{431}},
		{name: "request-line/70 KB target", req: get("/Api/V8/module/Accounts?x=" + strings.Repeat("a", 70<<10)), want: []int{431}},
	}
}
