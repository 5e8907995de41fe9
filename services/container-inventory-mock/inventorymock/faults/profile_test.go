package faults_test

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

func TestDecodeNamesEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []string // substrings of the error
	}{
		{"unknown field (a typo)", `{"errorrate": 0.5}`, []string{`unknown field "errorrate" (names are case-sensitive: did you mean "errorRate"?)`}},
		{"unknown nested field", `{"rules": [{"orderId": "x", "status": 422}]}`, []string{`unknown field "rules[0].orderId"`}},
		{"unknown field", `{"errorRatio": 0.5}`, []string{`unknown field "errorRatio"`}},
		{"not an object", `[]`, []string{"decode fault profile"}},
		{"trailing data", `{} {}`, []string{"unexpected data after the JSON object"}},
		{"rate above 1", `{"errorRate": 1.5}`, []string{"errorRate 1.5: want a number from 0 to 1"}},
		{"shares above 1", `{"errorRate": 0.6, "timeoutRate": 0.5}`, []string{"must add up to 1 or less"}},
		{"status not an error", `{"errorRate": 0.1, "errorStatus": 200}`, []string{"errorStatus 200: want an HTTP status from 300 to 599"}},
		{"bad duration", `{"latency": "soon"}`, []string{`duration "soon": want a string such as "250ms"`}},
		{"duration as a number", `{"latency": 250}`, []string{`duration 250: want a string`}},
		{"negative duration", `{"latencyJitter": "-1s"}`, []string{"latencyJitter -1s: want a duration of zero or more"}},
		{"unknown route", `{"routes": ["allocate", "delete"]}`, []string{`routes: unknown route "delete"`}},
		{"outage with until and for", `{"outage": {"until": "2030-01-01T00:00:00Z", "for": "1s"}}`, []string{"outage: give either until or for, not both"}},
		{"outage mode", `{"outage": {"mode": "explode"}}`, []string{`outage.mode "explode"`}},
		{"failFirst count", `{"failFirst": {"count": -1}}`, []string{"failFirst.count -1: want zero or more"}},
		{"rule without pattern", `{"rules": [{"status": 422}]}`, []string{"rules[0]: give an orderID or containerID pattern"}},
		{"rule with bad regexp", `{"rules": [{"orderID": "^O-(", "status": 422}]}`, []string{`rules[0].orderID "^O-("`}},
		{"rule body without status", `{"rules": [{"orderID": "x", "body": {}}]}`, []string{"rules[0].body: a body needs a status"}},
		{
			"several problems at once",
			`{"errorRate": -1, "rules": [{"orderID": "x", "status": 99}]}`,
			[]string{"errorRate -1", "rules[0].status 99"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := faults.Decode([]byte(tt.json))
			if err == nil {
				t.Fatal("Decode succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestProfileJSONRoundTrips(t *testing.T) {
	in := `{"seed":5,"routes":["allocate"],"errorRate":0.2,"errorStatus":429,"retryAfter":"2s",` +
		`"latency":"150ms","latencyJitter":"50ms","timeoutRate":0.1,` +
		`"outage":{"until":"2030-01-01T00:00:00Z","mode":"drop"},"failFirst":{"count":2,"status":503},` +
		`"rules":[{"name":"perm","orderID":"^O-PERM-","status":422,"body":{"error":"rejected"},"latency":"0s"}]}`
	p, err := faults.Decode([]byte(in))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, string(out)); diff != "" {
		t.Errorf("round trip mismatch (-in +out):\n%s", diff)
	}
}

func TestPresets(t *testing.T) {
	if diff := cmp.Diff([]string{"flaky", "healthy", "outage", "permanent", "slow"}, faults.PresetNames()); diff != "" {
		t.Errorf("preset names (-want +got):\n%s", diff)
	}
	tests := []struct {
		name string
		want faults.Profile
	}{
		{"healthy", faults.Profile{}},
		{"flaky", faults.Profile{ErrorRate: 0.2, ErrorStatus: 503}},
		{"slow", faults.Profile{Latency: faults.Duration(500 * time.Millisecond), LatencyJitter: faults.Duration(250 * time.Millisecond), TimeoutRate: 0.1}},
		{"outage", faults.Profile{Outage: &faults.Outage{Mode: "status", Status: 503}}},
		{"permanent", faults.Profile{Rules: []faults.Rule{{
			Name: "reject-every-order", OrderID: "^", Status: 422,
			Body: json.RawMessage(`{"error":"unprocessable_entity","message":"the inventory refuses this order"}`),
		}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := faults.Preset(tt.name)
			if !ok {
				t.Fatalf("Preset(%q) not found", tt.name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("preset mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadAcceptsEveryFormOfFaultProfile(t *testing.T) {
	files := map[string]string{
		"profile.json": `{"errorRate": 0.3}`,
		"broken.json":  `{"errorRate": 3}`,
	}
	readFile := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	tests := []struct {
		spec    string
		want    faults.Profile
		wantErr string
	}{
		{spec: "", want: faults.Profile{}},
		{spec: "flaky", want: faults.Profile{ErrorRate: 0.2, ErrorStatus: 503}},
		{spec: `  {"timeoutRate": 0.5}  `, want: faults.Profile{TimeoutRate: 0.5}},
		{spec: "@profile.json", want: faults.Profile{ErrorRate: 0.3, ErrorStatus: 503}},
		{spec: "@missing.json", wantErr: "read fault profile file: open missing.json: file does not exist"},
		{spec: "@broken.json", wantErr: "broken.json: invalid fault profile: errorRate 3"},
		{spec: "Flaky", wantErr: `unknown fault profile preset "Flaky": want one of flaky, healthy, outage, permanent, slow, inline JSON`},
		{spec: `{"errorRate": 0.1`, wantErr: "decode fault profile"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := faults.Load(tt.spec, readFile)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("profile mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRejectsAnInvalidProfile(t *testing.T) {
	_, err := faults.New(faults.Profile{ErrorRate: 2}, time.Now)
	if err == nil || !strings.Contains(err.Error(), "errorRate 2") {
		t.Errorf("New error = %v, want it to name errorRate", err)
	}
	e, err := faults.New(faults.Profile{}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Set(faults.Profile{TimeoutRate: -0.1}); err == nil {
		t.Error("Set accepted an invalid profile")
	}
}
