package valueedit_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/valueedit"
)

func TestSetChangesOnlyTheNamedFields(t *testing.T) {
	in := []byte(`{"type":"OrderCreated","data":{"quantity":0,"city":"Oakland","tags":["a"]}}`)
	tests := []struct {
		name    string
		sets    []string
		want    string
		wantErr string
	}{
		{"number", []string{"data.quantity=4"}, `{"type":"OrderCreated","data":{"quantity":4,"city":"Oakland","tags":["a"]}}`, ""},
		{"bare word is a string", []string{"data.city=Rotterdam"}, `{"type":"OrderCreated","data":{"quantity":0,"city":"Rotterdam","tags":["a"]}}`, ""},
		{"quoted JSON string", []string{`data.city="4"`}, `{"type":"OrderCreated","data":{"quantity":0,"city":"4","tags":["a"]}}`, ""},
		{"JSON value", []string{`data.tags=["a","b"]`}, `{"type":"OrderCreated","data":{"quantity":0,"city":"Oakland","tags":["a","b"]}}`, ""},
		{"array element", []string{"data.tags.0=z"}, `{"type":"OrderCreated","data":{"quantity":0,"city":"Oakland","tags":["z"]}}`, ""},
		{"several", []string{"data.quantity=2", "data.city=Lisbon"}, `{"type":"OrderCreated","data":{"quantity":2,"city":"Lisbon","tags":["a"]}}`, ""},
		{"value with =", []string{"data.city=a=b"}, `{"type":"OrderCreated","data":{"quantity":0,"city":"a=b","tags":["a"]}}`, ""},
		{"no =", []string{"data.quantity"}, "", "want path=value"},
		{"empty path", []string{"=4"}, "", "want path=value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := valueedit.Set(in, tc.sets)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Set error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("Set =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	if _, err := valueedit.Set([]byte("{not json"), []string{"a=1"}); err == nil {
		t.Error("Set on a value that is not JSON succeeded")
	}
}

func orderCreated(t *testing.T, orderID string) []byte {
	t.Helper()
	env, err := events.New("test", events.TypeOrderCreated, orderID, events.OrderCreated{
		OrderID: orderID, ProductID: "P1", CustomerID: "C1", Quantity: 1,
		PickupCity: "Oakland", DestinationCity: "Shanghai", ExpectedDeliveryDate: "2026-02-01",
	}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	b, err := events.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidateDecodesTheEventItClaimsToBe(t *testing.T) {
	good := orderCreated(t, "O-1")
	mustSet := func(sets ...string) []byte {
		b, err := valueedit.Set(good, sets)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		value   []byte
		key     string
		wantErr string
	}{
		{"valid", good, "O-1", ""},
		{"quantity zero", mustSet("data.quantity=0"), "O-1", "quantity"},
		{"quantity as text", mustSet(`data.quantity="4"`), "O-1", "quantity"},
		{"unknown data field", mustSet("data.colour=blue"), "O-1", "colour"},
		{"unknown type", mustSet("type=OrderShipped"), "O-1", "OrderShipped"},
		{"other order than the key", mustSet("subject=O-2", "data.orderID=O-2"), "O-1", "differs from the record key"},
		{"not JSON", []byte("{"), "O-1", "not a valid event"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := valueedit.Validate(tc.value, []byte(tc.key))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate error = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestDiffShowsOnlyTheChange(t *testing.T) {
	before := []byte(`{"a":1,"b":{"c":"x"},"d":true}`)
	after := []byte(`{"a":1,"b":{"c":"y"},"d":true}`)
	d, err := valueedit.Diff(before, after, "old", "new")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--- old", "+++ new", `-    "c": "x"`, `+    "c": "y"`} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, `-  "a": 1`) {
		t.Errorf("diff shows an unchanged line as removed:\n%s", d)
	}
	if d, _ := valueedit.Diff(before, before, "a", "b"); d != "" {
		t.Errorf("diff of equal values: %q", d)
	}
}

func TestEditorEditsAPrettyPrintedCopy(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "ed.sh")
	// The "person" checks the file is pretty-printed, then changes a value.
	body := "#!/bin/sh\ngrep -q '^  \"a\": 1' \"$1\" || exit 3\nsed -i 's/\"a\": 1/\"a\": 2/' \"$1\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	got, err := valueedit.Editor{Command: script, Stderr: &stderr, TempDir: dir}.Edit(context.Background(), []byte(`{"a":1}`))
	if err != nil {
		t.Fatalf("Edit: %v (%s)", err, stderr.String())
	}
	if c := valueedit.Compact(got); string(c) != `{"a":2}` {
		t.Errorf("edited value %s", c)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "dlq-edit-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	if _, err := (valueedit.Editor{Command: "false"}).Edit(context.Background(), []byte(`{}`)); err == nil {
		t.Error("an editor that fails gives no error")
	}
	if _, err := (valueedit.Editor{}).Edit(context.Background(), []byte(`{}`)); err == nil {
		t.Error("no editor gives no error")
	}
}
