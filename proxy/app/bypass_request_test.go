package app_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

const (
	suiteModule = "/Api/V8/module"
	ownAccount  = "/Api/V8/module/Accounts/acc-1"
)

// suiteUpdate is a SuiteCRM V8 update body.
func suiteUpdate(typ, id, attrs string) string {
	return `{"data":{"type":"` + typ + `","id":"` + id + `","attributes":{` + attrs + `}}}`
}

// unchanged asserts that a record in the CRM still has its original value.
func unchanged(module, id, field string, want any) func(t *testing.T, e *env, r response) {
	return func(t *testing.T, e *env, _ response) {
		t.Helper()
		rec, ok := e.ds.Get(module, id)
		if !ok {
			t.Fatalf("%s/%s is gone from the CRM", module, id)
		}
		if rec[field] != want {
			t.Fatalf("%s/%s %s = %v, want it untouched (%v)", module, id, field, rec[field], want)
		}
	}
}

func methodAttacks() []attack {
	var out []attack
	for _, m := range []string{"OPTIONS", "TRACE", "CONNECT", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE",
		"LOCK", "UNLOCK", "SEARCH", "REPORT", "PURGE", "LINK", "UNLINK", "QUERY", "DEBUG", "TRACK",
		"get", "Get", "delete", "pOST", "patch"} {
		out = append(out, attack{name: "verbs/" + m, method: m, path: "/Api/V8/module/Users", persona: "sam",
			status: 405, kind: "method-not-allowed", leak: staffOnly})
	}
	for _, m := range []string{"MERGE", "put"} {
		out = append(out, attack{name: "verbs/espo " + m, crm: "espocrm", method: m, path: "/api/v1/Account/acc-2", persona: "sam",
			status: 405, kind: "method-not-allowed"})
	}
	// HEAD is GET without a body: the same decision, and the same record
	// rule, or it answers "does this record exist?" for records the
	// subject may not see.
	head := func(name, crm, path string, status int, reach func(*testing.T, []seen)) attack {
		return attack{name: "head/" + name, crm: crm, method: "HEAD", path: path, persona: "alice", status: status,
			leak: append(append([]string{}, staffOnly...), otherStoresAccounts...), reach: reach}
	}
	out = append(out,
		head("invisible record answers as a missing one", "", "/Api/V8/module/Accounts/acc-2", 404, reached("GET /Api/V8/module/Accounts/acc-2")),
		head("missing record", "", "/Api/V8/module/Accounts/acc-99", 404, reached("GET /Api/V8/module/Accounts/acc-99")),
		head("forbidden module", "", "/Api/V8/module/Users", 403, nil),
		head("another employee", "", "/Api/V8/module/Employees/e-sales2", 404, reached("GET /Api/V8/module/Employees/e-sales2")),
		head("own record", "", "/Api/V8/module/Accounts/acc-1", 200, reached("GET /Api/V8/module/Accounts/acc-1")),
		head("list", "", "/Api/V8/module/Accounts", 200, reached("GET /Api/V8/module/Accounts")),
		head("espo invisible record", "espocrm", "/api/v1/Account/acc-2", 404, reached("GET /api/v1/Account/acc-2")),
		head("espo another employee", "espocrm", "/api/v1/Employee/e-sales2", 404, reached("GET /api/v1/Employee/e-sales2")),
	)
	return out
}

func overrideAttacks() []attack {
	acc := "/Api/V8/module/Accounts/acc-1"
	bad := func(name, method, path, body string, hdr ...string) attack {
		return attack{name: name, method: method, path: path, persona: "sam", body: body, hdr: hdr, status: 400, kind: "bad-request",
			check: unchanged("Accounts", "acc-1", "name", "Pat Customer household")}
	}
	badEspo := func(name, method, path, body string, hdr ...string) attack {
		a := bad(name, method, path, body, hdr...)
		a.crm = "espocrm"
		return a
	}
	stripped := func(name string, hdr ...string) attack {
		return attack{name: name, method: "GET", path: acc, persona: "alice", hdr: hdr, status: 200, leak: staffOnly,
			reach: reached("GET " + acc)}
	}
	out := []attack{
		badEspo("header/espo X-HTTP-Method-Override", "GET", "/api/v1/Account/acc-1", "", "X-HTTP-Method-Override", "DELETE"),
		bad("header/non-canonical name", "GET", acc, "", "x-http-method-override", "DELETE"),
		bad("header/downgrade of a delete", "DELETE", "/Api/V8/module/Leads/l-1", "", "X-Http-Method-Override", "GET"),
		badEspo("header/X-Method-Override on a create", "POST", "/api/v1/Account", `{"name":"x"}`, "X-Method-Override", "PATCH"),
		badEspo("header/X-HTTP-Method", "GET", "/api/v1/Account/acc-1", "", "X-HTTP-Method", "PUT"),
		bad("header/lower-case value", "GET", acc, "", "X-HTTP-Method-Override", "delete"),
		bad("header/empty value", "GET", acc, "", "X-HTTP-Method-Override", ""),
		badEspo("header/espo X-Original-URL", "GET", "/api/v1/Account", "", "X-Original-URL", "/api/v1/User"),
		badEspo("header/espo X-Rewrite-URL", "GET", "/api/v1/Account", "", "X-Rewrite-URL", "/api/v1/User"),
		stripped("stripped/X-Original-Method", "X-Original-Method", "DELETE"),
		stripped("stripped/X-Forwarded-Method", "X-Forwarded-Method", "DELETE"),
		stripped("stripped/X-Original-URI", "X-Original-URI", "/Api/V8/module/Users"),
		stripped("stripped/X-Forwarded-Uri", "X-Forwarded-Uri", "/Api/V8/module/Users"),
		stripped("stripped/X-Forwarded-Prefix", "X-Forwarded-Prefix", "/legacy/admin"),
		stripped("stripped/X-Envoy-Original-Path", "X-Envoy-Original-Path", "/Api/V8/module/Users"),
		stripped("stripped/X-Override-URL", "X-Override-URL", "/Api/V8/module/Users"),
		stripped("stripped/X-Forwarded-Path", "X-Forwarded-Path", "/Api/V8/module/Users"),
	}
	for _, q := range []string{"_METHOD=DELETE", "%5Fmethod=DELETE", "_method[]=DELETE", ".method=DELETE", "+_method=DELETE",
		"%20_method=DELETE", "_method%00x=DELETE", "_me%74hod=DELETE", "_Method=PUT", "_method[x]=PATCH", "a=1&_method=DELETE",
		"_method=DELETE&_method=GET"} {
		out = append(out, bad("query/"+q, "GET", acc+"?"+q, ""))
	}
	out = append(out,
		badEspo("query/espo _method", "GET", "/api/v1/Account/acc-1?_method=DELETE", ""),
		badEspo("query/on a write", "PUT", "/api/v1/Account/acc-1?_method=DELETE", `{"name":"x"}`),
		attack{name: "query/double underscore is not an override", method: "GET", path: acc + "?__method=DELETE", persona: "alice",
			status: 200, reach: reached("GET " + acc + "?__method=DELETE")},
		attack{name: "query/the word in a value is not an override", method: "GET", path: acc + "?x=_method", persona: "alice",
			status: 200, reach: reached("GET " + acc + "?x=_method")},
		bad("body/_method", "POST", suiteModule, `{"_method":"DELETE","data":{"type":"Accounts","attributes":{"name":"x"}}}`),
		bad("body/_METHOD as Slim reads it", "POST", suiteModule, `{"data":{"type":"Accounts","attributes":{"name":"x"}},"_METHOD":"DELETE"}`),
		bad("body/escaped name", "POST", suiteModule, `{"_m\u0065thod":"DELETE","data":{"type":"Accounts","attributes":{"name":"x"}}}`),
		badEspo("body/espo update", "PUT", "/api/v1/Account/acc-1", `{"name":"x","_method":"DELETE"}`),
		badEspo("body/espo create", "POST", "/api/v1/Lead", `{"_Method":"DELETE","firstName":"x"}`),
	)
	return out
}

// spoofed are headers that claim an identity, a route, a client address or
// a protocol. None may reach the CRM; crmgate's own values replace the
// forwarding ones (checkUpstreamHeaders).
var spoofed = [][2]string{
	{"X-Forwarded-Preferred-Username", "sam"}, {"X-Auth-Request-Email", "sam@shop.example"}, {"X-Auth-Request-Groups", "admin"},
	{"X-Authenticated-User", "sam"}, {"X-Authenticated-Userid", "u-admin"}, {"X-Remote-Group", "admin"},
	{"X-Username", "sam"}, {"X-Email", "sam@shop.example"}, {"X-Roles", "admin"}, {"X-Groups", "admin"},
	{"X-Crmgate-Subject", "sam"}, {"X-Crmgate-Roles", "admin"}, {"X-Amzn-Oidc-Identity", "sam"},
	{"X-Amzn-Oidc-Data", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzYW0ifQ."}, {"X-Goog-Authenticated-User-Email", "accounts.google.com:sam@shop.example"},
	{"Cf-Access-Authenticated-User-Email", "sam@shop.example"}, {"X-Ms-Client-Principal-Name", "sam"},
	{"X-Jwt-Assertion", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzYW0ifQ."}, {"X-Userinfo", "eyJzdWIiOiJzYW0ifQ"},
	{"X-Id-Token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzYW0ifQ."}, {"X-Access-Token", "stolen"}, {"X-Forwarded-Access-Token", "stolen"},
	{"Espo-Authorization-By-Token", "true"}, {"X-Hmac-Authorization", "c2FtOnNpZw=="}, {"X-Api-Key", "guess"},
	{"Cookie", "LEGACYSESSID=admin"}, {"Cookie", "auth-token=stolen; auth-username=admin"}, {"Cookie", "sugar_user_theme=SuiteP"},
	{"X-Csrf-Token", "stolen"}, {"X-Real-Ip", "10.0.0.1"}, {"True-Client-Ip", "10.0.0.1"}, {"Cf-Connecting-Ip", "10.0.0.1"},
	{"X-Client-Ip", "10.0.0.1"}, {"X-Cluster-Client-Ip", "10.0.0.1"}, {"Fastly-Client-Ip", "10.0.0.1"},
	{"X-Originating-Ip", "10.0.0.1"}, {"Client-Ip", "10.0.0.1"}, {"X-Remote-Ip", "10.0.0.1"}, {"X-Remote-Addr", "10.0.0.1"},
	{"X-Proxyuser-Ip", "10.0.0.1"}, {"Forwarded", "for=10.0.0.1;host=crm.internal;proto=https"},
	{"X-Forwarded-For", "10.0.0.1"}, {"X-Forwarded-Proto", "https"}, {"X-Forwarded-Port", "443"},
	{"X-Forwarded-Server", "crm.internal"}, {"X-Forwarded-Host", "crm.internal"}, {"X-Host", "crm.internal"},
	{"X-Http-Host-Override", "crm.internal"}, {"X-Original-Host", "crm.internal"}, {"Via", "1.1 trusted-proxy"},
	{"X-Request-Id", clientRequestID}, {"X-Correlation-Id", "attacker"}, {"Accept-Encoding", "gzip"},
	{"Te", "trailers"}, {"Max-Forwards", "0"}, {"Connection", "X-Forwarded-For, X-Request-Id"},
	{"Proxy-Connection", "keep-alive"}, {"Early-Data", "1"}, {"X-Debug", "1"}, {"X-Espocrm-Debug", "true"},
}

// aliceTeamEspo is the record rule of alice's team as crmgate pushes it
// into an EspoCRM list query.
const aliceTeamEspo = "where[0][type]=in&where[0][attribute]=assignedUserId&where[0][value][0]=u-mgr&where[0][value][1]=u-sales1&where[0][value][2]=u-sales2"

func headerAttacks() []attack {
	var out []attack
	for _, h := range spoofed {
		out = append(out, attack{name: "spoof/" + h[0] + ": " + h[1], method: "GET", path: "/Api/V8/module/Accounts",
			persona: "alice", hdr: []string{h[0], h[1]}, status: 200, leak: otherStoresAccounts,
			reach: reached("GET /Api/V8/module/Accounts"), check: remoteIPLogged})
	}
	out = append(out,
		attack{name: "spoof/espo X-Api-Key and Espo-Authorization together", crm: "espocrm", method: "GET", path: "/api/v1/Account",
			persona: "alice", hdr: []string{"X-Api-Key", "guess", "Espo-Authorization", "YWRtaW46YWRtaW4="}, status: 200,
			leak: otherStoresAccounts, reach: reached("GET /api/v1/Account?" + aliceTeamEspo)},
		attack{name: "spoof/h2c upgrade never reaches the CRM", method: "GET", path: "/Api/V8/module/Accounts", persona: "alice",
			hdr:    []string{"Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "Http2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"},
			status: 200, leak: otherStoresAccounts, reach: reached("GET /Api/V8/module/Accounts")},
		attack{name: "spoof/websocket upgrade never reaches the CRM", crm: "espocrm", method: "GET", path: "/api/v1/Account", persona: "alice",
			hdr:    []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-Websocket-Version", "13"},
			status: 200, leak: otherStoresAccounts, reach: reached("GET /api/v1/Account?" + aliceTeamEspo)},
	)
	return out
}

// remoteIPLogged asserts that the decision used the connection's address,
// whatever forwarding header the client sent.
func remoteIPLogged(t *testing.T, e *env, _ response) {
	t.Helper()
	got := e.upstream.crmRequests()
	if len(got) == 0 {
		return
	}
	rid := got[0].Header.Get("X-Request-Id")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range e.dlog.lines() {
			if l["request_id"] != rid {
				continue
			}
			in, _ := l["input"].(map[string]any)
			req, _ := in["request"].(map[string]any)
			if ip := req["remote_ip"]; ip != "127.0.0.1" {
				t.Fatalf("decision input remote_ip = %v, want the peer address", ip)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no decision-log line for request %s", rid)
}

func hostAttacks() []attack {
	list := "/Api/V8/module/Accounts"
	host := func(name, h string) attack {
		return attack{name: name, method: "GET", path: list, persona: "alice", hdr: []string{"Host", h}, status: 200,
			leak: otherStoresAccounts, reach: reached("GET " + list)}
	}
	return []attack{
		host("header/foreign host is not forwarded", "evil.example"),
		host("header/internal name is not forwarded", "crm.internal:8080"),
		host("header/localhost", "localhost"),
		host("header/userinfo-like host", "sam@crm.internal"),
		{name: "header/foreign host on a forbidden module", method: "GET", path: "/Api/V8/module/Users", persona: "alice",
			hdr: []string{"Host", "crm.internal"}, status: 403, kind: "forbidden", leak: staffOnly},
	}
}

func jsonAttacks() []attack {
	acc1 := unchanged("Accounts", "acc-1", "name", "Pat Customer household")
	acc2 := unchanged("Accounts", "acc-2", "name", "Riley household")
	upd := func(name, body string, status int, kind string) attack {
		return attack{name: name, method: "PATCH", path: suiteModule, persona: "alice", body: body, status: status, kind: kind,
			check: acc1, leak: otherStoresAccounts}
	}
	espo := func(name, method, path, body string, status int, kind string) attack {
		return attack{name: name, crm: "espocrm", method: method, path: path, persona: "alice", body: body, status: status, kind: kind,
			check: acc1, leak: otherStoresAccounts}
	}
	deepArr := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	deepObj := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	utf16Body := func(s string) string {
		var b bytes.Buffer
		b.Write([]byte{0xFF, 0xFE})
		for _, u := range utf16.Encode([]rune(s)) {
			b.WriteByte(byte(u))
			b.WriteByte(byte(u >> 8))
		}
		return b.String()
	}

	out := []attack{
		upd("duplicate/top-level data", `{"data":{"type":"Accounts","id":"acc-1","attributes":{"name":"x"}},"data":{"type":"Accounts","id":"acc-2","attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("duplicate/type inside data", `{"data":{"type":"Accounts","id":"acc-1","type":"Users","attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("duplicate/id inside data", `{"data":{"type":"Accounts","id":"acc-1","id":"acc-2","attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("duplicate/escaped second id", `{"data":{"type":"Accounts","id":"acc-1","i\u0064":"acc-2","attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("duplicate/owner inside attributes", suiteUpdate("Accounts", "acc-1", `"assigned_user_id":"u-sales1","assigned_user_id":"u-admin"`), 400, "bad-request"),
		upd("duplicate/escaped attribute", suiteUpdate("Accounts", "acc-1", `"name":"x","n\u0061me":"y"`), 400, "bad-request"),
		upd("duplicate/attributes object twice", `{"data":{"type":"Accounts","id":"acc-1","attributes":{"name":"x"},"attributes":{"cost":1}}}`, 400, "bad-request"),
		espo("duplicate/espo owner", "PUT", "/api/v1/Account/acc-1", `{"assignedUserId":"u-sales1","assignedUserId":"u-admin"}`, 400, "bad-request"),
		espo("duplicate/espo escaped id", "PUT", "/api/v1/Account/acc-1", `{"id":"acc-1","\u0069d":"acc-2"}`, 400, "bad-request"),
		upd("escaped/buy price first letter", suiteUpdate("Accounts", "acc-1", `"\u0063ost":1`), 403, "readonly-fields"),
		upd("escaped/buy price every letter", suiteUpdate("Accounts", "acc-1", `"\u0063\u006f\u0073\u0074":1`), 403, "readonly-fields"),
		upd("escaped/upper case buy price", suiteUpdate("Accounts", "acc-1", `"\u0043OST":1`), 403, "readonly-fields"),
		upd("escaped/salary", suiteUpdate("Accounts", "acc-1", `"salary\u005fc":1`), 403, "readonly-fields"),
		upd("escaped/type names users", `{"data":{"type":"\u0055sers","id":"u-admin","attributes":{"is_admin":true}}}`, 403, "forbidden"),
		{name: "escaped/id names an invisible record", method: "PATCH", path: suiteModule, persona: "alice",
			body: `{"data":{"type":"Accounts","id":"acc\u002d2","attributes":{"name":"mine"}}}`, status: 404, kind: "not-found",
			leak: otherStoresAccounts, reach: reached("GET /Api/V8/module/Accounts/acc-2"), check: acc2},
		espo("escaped/espo buy price", "PUT", "/api/v1/Account/acc-1", `{"\u0063ostPrice":1}`, 403, "readonly-fields"),
		upd("case/Cost", suiteUpdate("Accounts", "acc-1", `"Cost":1`), 403, "readonly-fields"),
		upd("case/cOsT_usdollar", suiteUpdate("Accounts", "acc-1", `"cOsT_usdollar":1`), 403, "readonly-fields"),
		upd("case/SALARY_C", suiteUpdate("Accounts", "acc-1", `"SALARY_C":1`), 403, "readonly-fields"),
		espo("case/espo CostPrice", "PUT", "/api/v1/Account/acc-1", `{"CostPrice":1}`, 403, "readonly-fields"),
		espo("case/espo COSTPRICE", "PATCH", "/api/v1/Account/acc-1", `{"COSTPRICE":1}`, 403, "readonly-fields"),
		upd("case/lower-case type is still Users", `{"data":{"type":"users","id":"u-admin","attributes":{"is_admin":true}}}`, 403, "forbidden"),
		upd("case/Type beside type changes nothing", `{"data":{"Type":"Users","type":"Users","id":"u-admin","attributes":{"is_admin":true}}}`, 403, "forbidden"),
		upd("deep/10k nested arrays", suiteUpdate("Accounts", "acc-1", `"name":`+deepArr), 400, "bad-request"),
		upd("deep/10k nested objects", `{"data":{"type":"Accounts","id":"acc-1","attributes":{"name":`+deepObj+`}}}`, 400, "bad-request"),
		espo("deep/espo 10k nested objects", "PUT", "/api/v1/Account/acc-1", `{"name":`+deepObj+`}`, 400, "bad-request"),
		upd("number/overflowing float", suiteUpdate("Accounts", "acc-1", `"name":"x","amount":1e400`), 400, "bad-request"),
		upd("type/number", `{"data":{"type":1,"id":"acc-1","attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("type/array", `{"data":{"type":["Accounts"],"id":"acc-1","attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("type/object", `{"data":{"type":{"0":"Users"},"id":"acc-1","attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("type/null", `{"data":{"type":null,"id":"acc-1","attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("type/bool", `{"data":{"type":true,"id":"acc-1","attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("type/missing", `{"data":{"id":"acc-1","attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("id/number", `{"data":{"type":"Accounts","id":2,"attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("id/array", `{"data":{"type":"Accounts","id":["acc-1","acc-2"],"attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("id/object", `{"data":{"type":"Accounts","id":{"id":"acc-2"},"attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("id/null", `{"data":{"type":"Accounts","id":null,"attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("id/bool", `{"data":{"type":"Accounts","id":false,"attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("id/huge number", `{"data":{"type":"Accounts","id":123456789012345678901234567890,"attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("id/path characters", `{"data":{"type":"Accounts","id":"acc-1/../acc-2","attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("id/in attributes contradicts data.id", suiteUpdate("Accounts", "acc-1", `"id":"acc-2","name":"x"`), 400, "bad-request"),
		upd("id/numeric id in attributes", suiteUpdate("Accounts", "acc-1", `"id":2,"name":"x"`), 400, "bad-request"),
		espo("id/espo body contradicts path", "PUT", "/api/v1/Account/acc-1", `{"id":"acc-2","name":"x"}`, 400, "bad-request"),
		espo("id/espo number", "PUT", "/api/v1/Account/acc-1", `{"id":1,"name":"x"}`, 400, "bad-request"),
		espo("id/espo null", "PATCH", "/api/v1/Account/acc-1", `{"id":null,"name":"x"}`, 400, "bad-request"),
		espo("id/espo array", "PUT", "/api/v1/Account/acc-1", `{"id":["acc-1"],"name":"x"}`, 400, "bad-request"),
		upd("syntax/byte order mark", "\xEF\xBB\xBF"+suiteUpdate("Accounts", "acc-1", `"name":"x"`), 400, "bad-request"),
		upd("syntax/trailing garbage", suiteUpdate("Accounts", "acc-1", `"name":"x"`)+"x", 400, "bad-request"),
		upd("syntax/second document", suiteUpdate("Accounts", "acc-1", `"name":"x"`)+suiteUpdate("Accounts", "acc-2", `"name":"x"`), 400, "bad-request"),
		upd("syntax/trailing nul", suiteUpdate("Accounts", "acc-1", `"name":"x"`)+"\x00", 400, "bad-request"),
		upd("syntax/invalid utf-8", suiteUpdate("Accounts", "acc-1", "\"name\":\"\xff\xfe\""), 400, "bad-request"),
		upd("syntax/lone surrogate", suiteUpdate("Accounts", "acc-1", `"name":"\ud800"`), 400, "bad-request"),
		upd("syntax/comment", `{"data":{"type":"Accounts",/* x */"id":"acc-1","attributes":{"name":"x"}}}`, 400, "bad-request"),
		upd("syntax/single quotes", `{'data':{'type':'Accounts','id':'acc-1','attributes':{'name':'x'}}}`, 400, "bad-request"),
		upd("syntax/NaN", suiteUpdate("Accounts", "acc-1", `"name":"x","amount":NaN`), 400, "bad-request"),
		upd("syntax/top-level array", `[`+suiteUpdate("Accounts", "acc-1", `"name":"x"`)+`]`, 400, "bad-request"),
		espo("syntax/espo top-level array", "PUT", "/api/v1/Account/acc-1", `[{"name":"x"}]`, 400, "bad-request"),
		espo("syntax/espo utf-16 body labelled utf-16", "PUT", "/api/v1/Account/acc-1", utf16Body(`{"name":"x"}`), 400, "bad-request"),
	}
	out[len(out)-1].hdr = []string{"Content-Type", "application/json; charset=utf-16"}
	return out
}

func contentTypeAttacks() []attack {
	acc1 := unchanged("Accounts", "acc-1", "name", "Pat Customer household")
	body := suiteUpdate("Accounts", "acc-1", `"name":"x"`)
	ct := func(name, contentType, body string, status int, kind string) attack {
		return attack{name: name, method: "PATCH", path: suiteModule, persona: "alice", body: body,
			hdr: []string{"Content-Type", contentType}, status: status, kind: kind, check: acc1}
	}
	return []attack{
		ct("form/json inside a form", "application/x-www-form-urlencoded", body, 415, "unsupported-media-type"),
		ct("form/_METHOD in a form", "application/x-www-form-urlencoded", "_METHOD=DELETE&data[type]=Accounts&data[id]=acc-1", 415, "unsupported-media-type"),
		ct("form/multipart", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"_METHOD\"\r\n\r\nDELETE\r\n--x--\r\n", 415, "unsupported-media-type"),
		ct("text/plain with json inside", "text/plain", body, 415, "unsupported-media-type"),
		ct("text/json", "text/json", body, 415, "unsupported-media-type"),
		ct("lookalike/jsonx", "application/jsonx", body, 415, "unsupported-media-type"),
		ct("lookalike/a list of types", "application/x-www-form-urlencoded, application/json", body, 415, "unsupported-media-type"),
		ct("lookalike/no type at all", "", body, 415, "unsupported-media-type"),
		ct("lookalike/bad parameter", "application/json; charset", body, 415, "unsupported-media-type"),
		ct("charset/utf-7 smuggled quotes", "application/json; charset=utf-7", `{+ACI-data+ACI-:{+ACI-type+ACI-:+ACI-Users+ACI-}}`, 400, "bad-request"),
		{name: "two content types/json then form", method: "PATCH", path: suiteModule, persona: "alice",
			body:   suiteUpdate("Accounts", "acc-1", `"name":"a&_METHOD=DELETE&b"`),
			hdr:    []string{"Content-Type", "application/json", "Content-Type", "application/x-www-form-urlencoded"},
			status: 415, kind: "unsupported-media-type", check: acc1},
		{name: "two content types/form then json", method: "PATCH", path: suiteModule, persona: "alice",
			body:   suiteUpdate("Accounts", "acc-1", `"name":"a&_METHOD=DELETE&b"`),
			hdr:    []string{"Content-Type", "application/x-www-form-urlencoded", "Content-Type", "application/json"},
			status: 415, kind: "unsupported-media-type", check: acc1},
		{name: "espo/form", crm: "espocrm", method: "PUT", path: "/api/v1/Account/acc-1", persona: "alice", body: "name=x&id=acc-2",
			hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415, kind: "unsupported-media-type", check: acc1},
		{name: "body on a read", method: "GET", path: "/Api/V8/module/Accounts", persona: "alice", body: "GET /Api/V8/module/Users HTTP/1.1\r\n\r\n",
			hdr: []string{"Content-Type", "text/plain"}, status: 400, kind: "bad-request"},
		{name: "body on a delete", method: "DELETE", path: "/Api/V8/module/Leads/l-1", persona: "alice", body: `{"id":"l-2"}`,
			status: 400, kind: "bad-request", check: unchanged("Leads", "l-1", "last_name", "Hughes")},
	}
}

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.String()
}

func zl(s string) string {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.String()
}

func encodingAttacks() []attack {
	acc1 := unchanged("Accounts", "acc-1", "name", "Pat Customer household")
	body := suiteUpdate("Accounts", "acc-1", `"cost":1`)
	enc := func(name, coding, body string) attack {
		return attack{name: name, method: "PATCH", path: suiteModule, persona: "alice", body: body,
			hdr: []string{"Content-Encoding", coding}, status: 415, kind: "unsupported-media-type", check: acc1}
	}
	return []attack{
		enc("request/gzip hides a buy price", "gzip", gz(body)),
		enc("request/deflate", "deflate", zl(body)),
		enc("request/br", "br", body),
		enc("request/upper-case GZIP", "GZIP", gz(body)),
		enc("request/gzip then identity", "gzip, identity", gz(body)),
		enc("request/identity then gzip", "identity, gzip", gz(body)),
		enc("request/x-gzip", "x-gzip", gz(body)),
		{name: "request/second header says gzip", method: "PATCH", path: suiteModule, persona: "alice", body: gz(body),
			hdr: []string{"Content-Encoding", "identity", "Content-Encoding", "gzip"}, status: 415, kind: "unsupported-media-type", check: acc1},
		{name: "request/espo gzip", crm: "espocrm", method: "PUT", path: "/api/v1/Account/acc-1", persona: "alice", body: gz(`{"costPrice":1}`),
			hdr: []string{"Content-Encoding", "gzip"}, status: 415, kind: "unsupported-media-type", check: acc1},
		{name: "response/client asks for gzip and gets inspected identity", method: "GET", path: "/Api/V8/module/AOS_Products/p-1", persona: "alice",
			hdr: []string{"Accept-Encoding", "gzip"}, status: 200, leak: []string{`"cost"`}, reach: reached("GET /Api/V8/module/AOS_Products/p-1"),
			check: func(t *testing.T, _ *env, r response) {
				if ce := r.Header.Get("Content-Encoding"); ce != "" {
					t.Fatalf("Content-Encoding %q", ce)
				}
			}},
	}
}

func oversizeAttacks() []attack {
	acc1 := unchanged("Accounts", "acc-1", "name", "Pat Customer household")
	huge := strings.Repeat("x", 11<<20)
	return []attack{
		{name: "body/over the limit", method: "PATCH", path: suiteModule, persona: "alice", body: suiteUpdate("Accounts", "acc-1", `"name":"`+huge+`"`),
			status: 413, kind: "body-too-large", check: acc1},
		{name: "body/chunked over the limit", method: "PATCH", path: suiteModule, persona: "alice", body: suiteUpdate("Accounts", "acc-1", `"name":"`+huge+`"`),
			hdr: []string{"Transfer-Encoding", "chunked"}, status: 413, kind: "body-too-large", check: acc1},
		{name: "body/espo over the limit", crm: "espocrm", method: "POST", path: "/api/v1/Account", persona: "alice", body: `{"name":"` + huge + `"}`,
			status: 413, kind: "body-too-large"},
		{name: "body/large body on a read", method: "GET", path: "/Api/V8/module/Accounts", persona: "alice", body: strings.Repeat("x", 1<<20),
			status: 400, kind: "bad-request"},
		{name: "header/2 MB header", method: "GET", path: "/Api/V8/module/Accounts", persona: "alice", hdr: []string{"X-Big", strings.Repeat("a", 2<<20)},
			status: 431},
		{name: "token/oversized bearer token", method: "GET", path: "/Api/V8/module/Accounts", hdr: []string{"Authorization", "Bearer " + strings.Repeat("a", 64<<10)},
			status: 401, kind: "invalid-token"},
		{name: "query/long query on an allowed list", method: "GET", path: "/Api/V8/module/Accounts?x=" + strings.Repeat("a", 32<<10), persona: "alice",
			status: 200, leak: otherStoresAccounts, reach: func(t *testing.T, got []seen) {
				if len(got) != 1 || got[0].Path != "/Api/V8/module/Accounts" {
					t.Fatalf("upstream saw %d requests", len(got))
				}
			}},
	}
}
