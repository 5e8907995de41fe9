package events

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzObjectFields checks that the fast path of objectFields agrees with
// the token-by-token reader: whatever splitObject accepts, readObjectFields
// accepts too, with the same members in the same order and the same
// compacted values. (What splitObject does not accept goes to
// readObjectFields anyway.) The seeds are the FuzzDecode corpus and the
// tricky shapes below.
func FuzzObjectFields(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `, `{"a":1}`, "{\n \"a\" : [ 1 , { \"b\" : \"}]\" } ] ,\"c\":null}\t",
		`{"a":"x\"y","b":"\\"}`, `{"\u0069d":1,"id":2}`, `{"a":1,"a":2}`, `{"a":1}{}`, `[{"a":1}]`,
		"{\"k\xff\":1}", `{"a":-0,"b":1e5,"c":true,"d":false}`, `{"a":{"b":{"c":[[],{}]}}}`, `"s"`, `{"a":1,}`,
	} {
		f.Add([]byte(seed))
	}
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no FuzzDecode seed corpus: %v", err)
	}
	for _, file := range files {
		b, err := readFuzzSeed(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, order, ok := splitObject(b)
		if !ok {
			return
		}
		wantFields, wantOrder, err := readObjectFields(b, "")
		if err != nil {
			t.Fatalf("splitObject accepted %q, readObjectFields rejects it: %v", b, err)
		}
		if diff := cmp.Diff(wantOrder, order); diff != "" {
			t.Errorf("order of %q (-reader +split):\n%s", b, diff)
		}
		if diff := cmp.Diff(wantFields, fields); diff != "" {
			t.Errorf("fields of %q (-reader +split):\n%s", b, diff)
		}
	})
}

// TestWellFormedEventsTakeTheFastPath: the seeds that decode, and their
// data objects, never need the token reader.
func TestWellFormedEventsTakeTheFastPath(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "valid-*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid seeds: %v", err)
	}
	for _, file := range files {
		b, err := readFuzzSeed(file)
		if err != nil {
			t.Fatal(err)
		}
		fields, _, ok := splitObject(b)
		if !ok {
			t.Errorf("%s: envelope not split by the fast path", filepath.Base(file))
			continue
		}
		if _, _, ok := splitObject(fields["data"]); !ok {
			t.Errorf("%s: data not split by the fast path", filepath.Base(file))
		}
	}
}

// TestPlainIntAgreesWithEncodingJSON: the shortcut for integers reads
// what json.Unmarshal reads and leaves every other form to it.
func TestPlainIntAgreesWithEncodingJSON(t *testing.T) {
	tests := []struct {
		raw    string
		want   int
		wantOK bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"10", 10, true}, {"-42", -42, true},
		{strconv.Itoa(int(^uint(0) >> 1)), int(^uint(0) >> 1), true},
		{"9223372036854775808", 0, false}, // one past the largest int64
		{"1.5", 0, false}, {"1e3", 0, false}, {"-", 0, false}, {"", 0, false}, {`"1"`, 0, false},
	}
	for _, tt := range tests {
		got, ok := plainInt([]byte(tt.raw))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("plainInt(%q) = %d, %t; want %d, %t", tt.raw, got, ok, tt.want, tt.wantOK)
		}
	}
}

// readFuzzSeed reads a file in the "go test fuzz v1" format holding one
// []byte. FuzzDecode's tests use it too, through export_test.go.
func readFuzzSeed(file string) ([]byte, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	header, value, ok := strings.Cut(strings.TrimSpace(string(raw)), "\n")
	if !ok || header != "go test fuzz v1" || !strings.HasPrefix(value, "[]byte(") || !strings.HasSuffix(value, ")") {
		return nil, fmt.Errorf("%s is not a go test fuzz v1 file with one []byte", file)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(value, "[]byte("), ")"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return []byte(s), nil
}
