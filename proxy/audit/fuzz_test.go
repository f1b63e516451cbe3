package audit

import (
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// FuzzErase: whatever the body holds and whichever body field is masked,
// the logged input is valid JSON and the masked field is not in it.
func FuzzErase(f *testing.F) {
	f.Add("password", "hunter2", "other", "x")
	f.Add("a/b", "v", "a~b", "w")
	f.Add("pass\xffword", "v", "pass\uFFFDword", "w")
	f.Add("", "", "0", "1")
	f.Add("a<b&c", "<script>", "\u2028", "v")
	f.Fuzz(func(t *testing.T, key, val, otherKey, otherVal string) {
		e := sampleEvent()
		e.Input.Resource.Body = map[string]any{key: val, otherKey: map[string]any{key: otherVal}}
		escaped := strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
		b, _ := newEntryBuilder([]string{"/input/resource/body/" + escaped}, 10, nil, zap.NewNop())
		en := b.build(e)
		if en.Input == nil {
			if len(en.Erased) != 1 || en.Erased[0] != inputRoot {
				t.Fatalf("input dropped but erased = %q", en.Erased)
			}
			return
		}
		var doc struct {
			Resource struct {
				Body map[string]json.RawMessage `json:"body"`
			} `json:"resource"`
		}
		if err := json.Unmarshal(en.Input, &doc); err != nil {
			t.Fatalf("logged input is not JSON: %v\n%s", err, en.Input)
		}
		// encoding/json repairs invalid UTF-8, so compare against the
		// key as it appears in JSON.
		jsonKey := strings.ToValidUTF8(key, "\uFFFD")
		if _, ok := doc.Resource.Body[jsonKey]; ok && jsonKey == key {
			t.Fatalf("masked key %q still present: %s", key, en.Input)
		}
	})
}
