package dlq_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// editorScript writes a shell script that edits the file it is given with
// sed, standing in for a person in $EDITOR.
func editorScript(t *testing.T, sedExpr string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "editor.sh")
	script := "#!/bin/sh\nsed -i '" + sedExpr + "' \"$1\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEditRedrivesACorrectedCopyAndResolvesTheOriginal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantQuant int
	}{
		{"--set", []string{"--set", "data.quantity=4"}, nil, 4},
		{"$EDITOR", nil, map[string]string{"EDITOR": "EDITOR_SCRIPT"}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			c.seed(standardSeed()...)
			if tc.env["EDITOR"] == "EDITOR_SCRIPT" {
				tc.env["EDITOR"] = editorScript(t, `s/"quantity": -1/"quantity": 3/`)
			}
			original := c.records(dlqTopic)[1] // 0:1, O-1002, quantity -1

			r := c.runWith(runOpts{env: tc.env}, append([]string{"edit", "0:1", "--yes"}, tc.args...)...)
			if r.code != dlq.ExitOK {
				t.Fatalf("edit: %s", r)
			}
			if !strings.Contains(r.stdout, `-    "quantity": -1,`) || !strings.Contains(r.stdout, `"quantity": `) {
				t.Errorf("no diff shown: %s", r)
			}
			got := c.records(retryTopic)
			if len(got) != 1 {
				t.Fatalf("retry topic has %d records, want 1", len(got))
			}
			_, oc, err := events.DecodeOrderCreated(got[0].Value)
			if err != nil {
				t.Fatalf("the corrected copy does not decode: %v", err)
			}
			if oc.Quantity != tc.wantQuant || oc.OrderID != "O-1002" || string(got[0].Key) != "O-1002" {
				t.Errorf("corrected copy: quantity %d order %s key %s", oc.Quantity, oc.OrderID, got[0].Key)
			}
			h := headerMap(got[0])
			if h[retrymeta.HeaderEditedFrom] != "order-dead-letter/0/1" || h[retrymeta.HeaderRedriveCount] != "1" || h[retrymeta.HeaderAttempt] != "0" {
				t.Errorf("headers of the corrected copy: %v", h)
			}
			// The original stays, unchanged, and is resolved as edited.
			if now := c.records(dlqTopic)[1]; !bytes.Equal(now.Value, original.Value) {
				t.Errorf("the original dead letter changed")
			}
			res := c.showOne("0:1").Resolution
			want := &resolution.Entry{
				DeadLetter:   kafkalog.Coord{Topic: dlqTopic, Partition: 0, Offset: 1},
				Action:       resolution.Edited,
				At:           fixedNow(),
				By:           "alice",
				Target:       &kafkalog.Coord{Topic: retryTopic, Partition: got[0].Partition, Offset: got[0].Offset},
				RedriveCount: 1,
				Identity:     `"O-1002" orders/4@101 redrive 0`,
			}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("resolution (-want +got):\n%s", diff)
			}
			if r := c.run("edit", "0:1", "--set", "data.quantity=5", "--yes"); r.code != dlq.ExitError || !strings.Contains(r.stderr, "already resolved") {
				t.Errorf("second edit of the same letter: %s", r)
			}
		})
	}
}

func TestEditRefusesWhatWouldFailAgain(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.seed(standardSeed()...)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"wrong type", []string{"--set", "data.quantity=\"four\""}, nil, dlq.ExitError, "quantity"},
		{"still invalid", []string{"--set", "data.quantity=0"}, nil, dlq.ExitError, "quantity"},
		{"another order", []string{"--set", "subject=O-9", "--set", "data.orderID=O-9", "--set", "data.quantity=4"}, nil, dlq.ExitError, "differs from the record key"},
		{"unknown field", []string{"--set", "data.quantitty=4"}, nil, dlq.ExitError, "quantitty"},
		{"unchanged", nil, map[string]string{"EDITOR": "true"}, dlq.ExitError, "unchanged"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.runWith(runOpts{env: tc.env}, append([]string{"edit", "0:1", "--yes"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want exit %d mentioning %q, got %s", tc.code, tc.want, r)
			}
		})
	}
	if n := len(c.records(retryTopic)); n != 0 {
		t.Errorf("%d records published by refused edits", n)
	}
	if pos, _ := c.listPositions("--status", "resolved"); len(pos) != 0 {
		t.Errorf("refused edits resolved %v", pos)
	}
}
