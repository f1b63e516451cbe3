package profile

import "testing"

func BenchmarkClassify(b *testing.B) {
	p := mustBuiltin(b, "suitecrm8")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Classify("GET", "/Api/V8/module/accounts/7f3c0a4e-1b2c-4d5e-8f90-123456789abc/relationships/contacts", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassifyBody(b *testing.B) {
	p := mustBuiltin(b, "suitecrm8")
	m, err := p.Classify("PATCH", "/Api/V8/module", nil)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"data":{"type":"Contacts","id":"c-1","attributes":{"phone_work":"+44 20 7946 0001","email1":"pat@example.net","first_name":"Pat"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ClassifyBody(m, body); err != nil {
			b.Fatal(err)
		}
	}
}
