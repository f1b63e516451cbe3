package emulator

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkSuiteCRMList1000 measures the emulator as an upstream: one page
// of 1,000 synthetic ~1 KB records.
func BenchmarkSuiteCRMList1000(b *testing.B) {
	ds := DepartmentStore()
	ds.AddSynthetic("Accounts", 1000, 1)
	h := NewSuiteCRM(ds, SuiteOptions{})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/Api/V8/module/Accounts?page[size]=1000", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
