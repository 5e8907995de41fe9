package dlq_test

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// standardSeed is a small dead-letter queue with one of each kind: a
// transient max-attempts failure, a permanent validation error, a redriven
// one, a poison record, one at the loop guard's limit, and one with a
// malformed header.
func standardSeed() []letter {
	return []letter{
		{partition: 0, orderID: "O-1001", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, message: "http-503: POST /containers/C-7/allocations: 503 Service Unavailable"},
		{partition: 0, orderID: "O-1002", reason: retrymeta.PermanentError, class: failure.Permanent, attempts: 1, quantity: -1, message: "validation: data.quantity must be > 0"},
		{partition: 1, orderID: "O-1003", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, at: t0.Add(30 * time.Minute), redrives: 1, message: "timeout: context deadline exceeded"},
		{partition: 1, orderID: "O-1004", reason: retrymeta.Poison, class: failure.Permanent, attempts: 1, value: []byte("{not json"), message: "decode: not valid JSON"},
		{partition: 2, orderID: "O-1005", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, at: t0.Add(65 * time.Minute), redrives: 3, message: "connection-refused: dial tcp 10.0.0.7:8081: connect: connection refused"},
		{partition: 2, orderID: "O-1006", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, message: "http-502: bad gateway", headers: []kafka.Header{{Key: retrymeta.HeaderAttempt, Value: []byte("five")}}},
	}
}

// golden compares got with testdata/name.golden, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got):\n%s", name, diff)
	}
}

func TestGoldenListAndShow(t *testing.T) {
	c := newCluster(t)
	c.seed(standardSeed()...)
	if r := c.run("resolve", "1:1", "--note", "test event from the load generator, INC-4711", "--yes"); r.code != dlq.ExitOK {
		t.Fatalf("resolve: %s", r)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"list_table", []string{"list"}},
		{"list_json", []string{"list", "-o", "json"}},
		{"show_table", []string{"show", "0:1"}},
		{"show_json", []string{"show", "0:1", "-o", "json"}},
		{"show_resolved_table", []string{"show", "1:1"}},
		{"show_malformed_table", []string{"show", "2:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(tc.args...)
			if r.code != dlq.ExitOK {
				t.Fatalf("%v: %s", tc.args, r)
			}
			golden(t, tc.name, r.stdout)
		})
	}
}

func TestListFilters(t *testing.T) {
	c := newCluster(t)
	c.seed(standardSeed()...)
	// 0:1 and 1:1 resolved: the filters must see the resolution log.
	if r := c.run("resolve", "--order-id", "O-1002", "--note", "customer cancelled", "--yes"); r.code != dlq.ExitOK {
		t.Fatalf("resolve: %s", r)
	}
	if r := c.run("resolve", "1:1", "--note", "poison", "--yes"); r.code != dlq.ExitOK {
		t.Fatalf("resolve: %s", r)
	}
	all := []string{"0:0", "0:1", "1:0", "1:1", "2:0", "2:1"}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no filter lists everything", nil, all},
		{"status all is the default", []string{"--status", "all"}, all},
		{"status pending leaves out the resolution log's entries", []string{"--status", "pending"}, []string{"0:0", "1:0", "2:0", "2:1"}},
		{"status resolved", []string{"--status", "resolved"}, []string{"0:1", "1:1"}},
		{"order id", []string{"--order-id", "O-1003"}, []string{"1:0"}},
		{"reason", []string{"--reason", "max-attempts"}, []string{"0:0", "1:0", "2:0", "2:1"}},
		{"error class", []string{"--error-class", "permanent"}, []string{"0:1", "1:1"}},
		{"contains in the message, any case", []string{"--contains", "DEADLINE"}, []string{"1:0"}},
		{"contains in the value", []string{"--contains", "\"quantity\":-1"}, []string{"0:1"}},
		{"since a duration ago", []string{"--since", "95m"}, []string{"1:0", "2:0"}},
		{"since RFC 3339", []string{"--since", "2026-01-02T04:00:00Z"}, []string{"2:0"}},
		{"until RFC 3339", []string{"--until", "2026-01-02T03:30:00Z"}, []string{"0:0", "0:1", "1:1", "2:1"}},
		{"since and until", []string{"--since", "2026-01-02T03:30:00Z", "--until", "2026-01-02T04:00:00Z"}, []string{"1:0"}},
		{"partition", []string{"--partition", "1"}, []string{"1:0", "1:1"}},
		{"from offset", []string{"--from-offset", "1"}, []string{"0:1", "1:1", "2:1"}},
		{"partition and from offset", []string{"--partition", "2", "--from-offset", "1"}, []string{"2:1"}},
		{"limit", []string{"--limit", "3"}, []string{"0:0", "0:1", "1:0"}},
		{"filters combine", []string{"--reason", "max-attempts", "--status", "pending", "--partition", "2"}, []string{"2:0", "2:1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, r := c.listPositions(tc.args...)
			if r.code != dlq.ExitOK {
				t.Fatalf("exit code: %s", r)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("positions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNothingMatchedExitsThree(t *testing.T) {
	c := newCluster(t)
	c.seed(standardSeed()...)
	for _, args := range [][]string{
		{"list", "--order-id", "O-nope", "--fail-empty"},
		{"stats", "--reason", "poison", "--status", "resolved"},
		{"export", "--contains", "no such text"},
		{"show", "O-nope"},
		{"show", "0:99"},
		{"redrive", "--order-id", "O-nope", "--yes"},
		{"resolve", "--order-id", "O-nope", "--note", "x", "--yes"},
		{"edit", "1:5", "--set", "data.quantity=1"},
	} {
		if r := c.run(args...); r.code != dlq.ExitNoMatch {
			t.Errorf("%v: want exit %d, got %s", args, dlq.ExitNoMatch, r)
		}
	}
	// An empty list is a success (set -e scripts go on) and still prints
	// its header, so a script can tell "none" from "broken".
	r := c.run("list", "--order-id", "O-nope", "-o", "json")
	if r.code != dlq.ExitOK || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty JSON list: want exit 0 and [], got %s", r)
	}
}

func TestListOfAnEmptyTopicExitsZero(t *testing.T) {
	c := newCluster(t)
	r := c.run("list")
	if r.code != dlq.ExitOK || !strings.HasPrefix(r.stdout, "POSITION") {
		t.Errorf("list of an empty topic: want exit 0 and the header, got %s", r)
	}
	if r := c.run("list", "--fail-empty"); r.code != dlq.ExitNoMatch {
		t.Errorf("list --fail-empty of an empty topic: want exit 3, got %s", r)
	}
}

func TestVersion(t *testing.T) {
	r := (&cluster{t: t}).run("--version")
	if r.code != dlq.ExitOK || !strings.HasPrefix(r.stdout, "dlq ") {
		t.Errorf("dlq --version: %s", r)
	}
}

func TestShowByOrderIDShowsEveryLetterOfTheOrder(t *testing.T) {
	c := newCluster(t)
	c.seed(
		letter{partition: 0, orderID: "O-7", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, message: "first"},
		letter{partition: 1, orderID: "O-8", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, message: "other"},
		letter{partition: 2, orderID: "O-7", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, redrives: 1, message: "again"},
	)
	r := c.run("show", "O-7", "-o", "json")
	if r.code != dlq.ExitOK {
		t.Fatal(r)
	}
	var details []render.Detail
	if err := json.Unmarshal([]byte(r.stdout), &details); err != nil {
		t.Fatalf("decode: %v\n%s", err, r)
	}
	var got []string
	for _, d := range details {
		got = append(got, d.OrderID+"@"+d.Topic)
	}
	if diff := cmp.Diff([]string{"O-7@" + dlqTopic, "O-7@" + dlqTopic}, got); diff != "" {
		t.Errorf("shown letters (-want +got):\n%s", diff)
	}
	if details[1].Partition != 2 || details[1].Value == nil || details[1].ErrorStack == "" {
		t.Errorf("second letter: want partition 2 with a JSON value and a stack, got %+v", details[1])
	}
}

func TestStatsCountsByReasonClassAndHour(t *testing.T) {
	c := newCluster(t)
	c.seed(standardSeed()...)
	if r := c.run("resolve", "0:0", "--note", "done", "--yes"); r.code != dlq.ExitOK {
		t.Fatal(r)
	}
	r := c.run("stats", "-o", "json")
	if r.code != dlq.ExitOK {
		t.Fatal(r)
	}
	var got render.Summary
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("decode: %v\n%s", err, r)
	}
	want := render.Summary{
		Total: 6, Pending: 5, Resolved: 1, Malformed: 1,
		ByReason: []render.Count{{Key: "max-attempts", Count: 4}, {Key: "permanent-error", Count: 1}, {Key: "poison", Count: 1}},
		ByClass:  []render.Count{{Key: "permanent", Count: 2}, {Key: "transient", Count: 4}},
		ByHour:   []render.Count{{Key: "2026-01-02T03:00Z", Count: 5}, {Key: "2026-01-02T04:00Z", Count: 1}},
		// 0:0 is resolved; 0:1 is the oldest pending (same time as 1:1 and
		// 2:1, and first in partition order).
		OldestPending: &render.Oldest{Partition: 0, Offset: 1, OrderID: "O-1002", DeadLetteredAt: t0, AgeSeconds: 7200},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if r := c.run("stats"); r.code != dlq.ExitOK || !strings.Contains(r.stdout, "Oldest pending: 0:1 order O-1002") {
		t.Errorf("stats table: %s", r)
	}
}

func TestExportKeepsRecordsByteForByte(t *testing.T) {
	c := newCluster(t)
	binary := []byte{0xff, 0x00, 0xfe}
	c.seed(standardSeed()...)
	c.seed(letter{partition: 1, orderID: "O-bin", reason: retrymeta.Poison, class: failure.Permanent, attempts: 1, value: binary, message: "binary"})
	want := c.records(dlqTopic)

	file := filepath.Join(t.TempDir(), "export.jsonl")
	for _, args := range [][]string{{"export"}, {"export", "--file", file}} {
		r := c.run(args...)
		if r.code != dlq.ExitOK {
			t.Fatalf("%v: %s", args, r)
		}
		out := r.stdout
		if len(args) > 1 {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			out = string(b)
			if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
				t.Errorf("export file mode %v, want 0600", fi.Mode().Perm())
			}
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != len(want) {
			t.Fatalf("%v: %d lines, want %d", args, len(lines), len(want))
		}
		got := map[string]render.ExportRecord{}
		for _, line := range lines {
			var rec render.ExportRecord
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("decode %q: %v", line, err)
			}
			got[positionOf(rec.Partition, rec.Offset)] = rec
		}
		for _, m := range want {
			rec, ok := got[positionOf(m.Partition, m.Offset)]
			if !ok {
				t.Fatalf("%v: record %d:%d missing", args, m.Partition, m.Offset)
			}
			if diff := cmp.Diff(string(m.Value), decodeExported(t, rec.Value, rec.ValueBase64)); diff != "" {
				t.Errorf("value of %d:%d (-want +got):\n%s", m.Partition, m.Offset, diff)
			}
			if string(m.Key) != decodeExported(t, rec.Key, rec.KeyBase64) {
				t.Errorf("key of %d:%d changed", m.Partition, m.Offset)
			}
			if len(rec.Headers) != len(m.Headers) {
				t.Fatalf("headers of %d:%d: %d, want %d", m.Partition, m.Offset, len(rec.Headers), len(m.Headers))
			}
			for i, h := range m.Headers {
				if rec.Headers[i].Key != h.Key || decodeExported(t, rec.Headers[i].Value, rec.Headers[i].ValueBase64) != string(h.Value) {
					t.Errorf("header %d of %d:%d: got %+v, want %s=%s", i, m.Partition, m.Offset, rec.Headers[i], h.Key, h.Value)
				}
			}
			if rec.Topic != dlqTopic || !rec.Timestamp.Equal(m.Time) {
				t.Errorf("coordinates of %d:%d: got %s at %s", m.Partition, m.Offset, rec.Topic, rec.Timestamp)
			}
		}
	}
}

func TestMalformedHeaderIsShownAndTheCommandGoesOn(t *testing.T) {
	c := newCluster(t)
	c.seed(standardSeed()...)
	r := c.run("list", "-o", "jsonl", "--partition", "2")
	if r.code != dlq.ExitOK {
		t.Fatal(r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("want the good and the malformed letter, got %s", r)
	}
	var row render.Row
	if err := json.Unmarshal([]byte(lines[1]), &row); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(row.Malformed, "x-retry-attempt") || row.Reason != "max-attempts" || row.OrderID != "O-1006" {
		t.Errorf("malformed row: want the bad header named and the good ones read, got %+v", row)
	}
	if r := c.run("list"); r.code != dlq.ExitOK || !strings.Contains(r.stdout, "malformed headers: ") {
		t.Errorf("table: want the malformed letter marked: %s", r)
	}
}

func TestColorsOnlyOnATerminalAndNotWithNoColor(t *testing.T) {
	c := newCluster(t)
	c.seed(standardSeed()...)
	tests := []struct {
		name      string
		tty       bool
		env       map[string]string
		args      []string
		wantColor bool
	}{
		{"terminal", true, nil, nil, true},
		{"pipe", false, nil, nil, false},
		{"NO_COLOR", true, map[string]string{"NO_COLOR": "1"}, nil, false},
		{"--no-color", true, nil, []string{"--no-color"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.runWith(runOpts{ttyOut: tc.tty, env: tc.env}, append([]string{"list"}, tc.args...)...)
			if r.code != dlq.ExitOK {
				t.Fatal(r)
			}
			if got := strings.Contains(r.stdout, "\x1b["); got != tc.wantColor {
				t.Errorf("color codes present = %t, want %t:\n%s", got, tc.wantColor, r.stdout)
			}
		})
	}
}

func TestUnreachableBrokerFailsInBoundedTime(t *testing.T) {
	// A listener that accepts connections and never answers: the worst
	// case, a broker that hangs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name, broker string
	}{
		{"connection refused", closedAddr},
		{"broker hangs", ln.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cluster{t: t, addr: tc.broker}
			start := time.Now()
			r := c.run("list", "--timeout", "500ms")
			elapsed := time.Since(start)
			if r.code != dlq.ExitError || !strings.Contains(r.stderr, "cannot reach Kafka at "+tc.broker) {
				t.Errorf("want exit 1 naming the broker, got %s", r)
			}
			// Below the 10 s default, so it proves --timeout applied; 16
			// times the timeout, for a loaded -race run.
			if elapsed > 8*time.Second {
				t.Errorf("took %s with --timeout 500ms", elapsed)
			}
		})
	}
}

func TestMissingTopicIsNamed(t *testing.T) {
	c := newCluster(t)
	r := c.run("list", "--topic", "order-dead-leter")
	if r.code != dlq.ExitError || !strings.Contains(r.stderr, `dead-letter topic "order-dead-leter" does not exist`) {
		t.Errorf("want exit 1 naming the missing topic, got %s", r)
	}
}

func TestUsageErrorsExitTwoInAtMostThreeLines(t *testing.T) {
	c := newCluster(t)
	c.seed(standardSeed()...)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no command", nil, nil, "no command given"},
		{"unknown command", []string{"lst"}, nil, `unknown command "lst"`},
		{"unknown flag", []string{"list", "--bogus"}, nil, "unknown flag: --bogus"},
		{"bad reason", []string{"list", "--reason", "tired"}, nil, `reason "tired"`},
		{"bad dialect filter", []string{"list", "--written-by", "cobol"}, nil, `dialect "cobol"`},
		{"bad dialect", []string{"list", "--dialect", "cobol"}, nil, `dialect "cobol"`},
		{"bad status", []string{"list", "--status", "done"}, nil, `status "done"`},
		{"bad since", []string{"list", "--since", "yesterday"}, nil, `time "yesterday"`},
		{"since after until", []string{"list", "--since", "1h", "--until", "2h"}, nil, "is not before --until"},
		{"bad output", []string{"list", "-o", "yaml"}, nil, `output format "yaml"`},
		{"no such partition", []string{"list", "--partition", "7"}, nil, "has partitions 0, 1, 2"},
		{"bad env", []string{"list"}, map[string]string{"KAFKA_TLS": "maybe"}, `KAFKA_TLS="maybe": want true or false`},
		{"bad broker env", []string{"list"}, map[string]string{"KAFKA_BROKERS": "localhost"}, "want host:port"},
		{"show needs an argument", []string{"show"}, nil, "accepts 1 arg"},
		{"redrive of resolved letters", []string{"redrive", "--status", "resolved", "--yes"}, nil, "redrive moves pending dead letters only"},
		{"redrive to nowhere", []string{"redrive", "--to", "elsewhere", "--yes"}, nil, `target "elsewhere"`},
		{"redrive without --yes off a terminal", []string{"redrive"}, nil, "pass --yes"},
		{"redrive with a bad URL", []string{"redrive", "--when-healthy", "not a url", "--yes"}, nil, "--when-healthy"},
		{"resolve without a note", []string{"resolve", "--yes"}, nil, "--note is required"},
		{"edit with a bad position", []string{"edit", "zero:one", "--set", "a=1"}, nil, "not a partition:offset"},
		{"edit with a bad assignment", []string{"edit", "0:0", "--set", "quantity"}, nil, "want path=value"},
		{"edit with nothing to apply", []string{"edit", "0:0"}, nil, "nothing to apply"},
		{"watch without a URL", []string{"watch"}, nil, "--when-healthy URL is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.runWith(runOpts{env: tc.env}, tc.args...)
			if r.code != dlq.ExitUsage {
				t.Fatalf("want exit %d, got %s", dlq.ExitUsage, r)
			}
			if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "--help' for usage") {
				t.Errorf("want %q and where the help is on stderr, got %s", tc.want, r)
			}
			if n := strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") + 1; n > 3 {
				t.Errorf("a usage error printed %d lines, want at most 3:\n%s", n, r.stderr)
			}
		})
	}
}

func TestFlagValuesComplete(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "list", "-o", ""}, []string{"table", "json", "jsonl"}},
		{[]string{"__complete", "list", "--sasl-mechanism", ""}, []string{"plain", "scram-sha-256", "scram-sha-512"}},
		{[]string{"__complete", "list", "--written-by", ""}, []string{"reefer", "spring", "connect", "streams", "share-group", "raw"}},
		{[]string{"__complete", "show", "--dialect", ""}, []string{"auto", "spring"}},
	} {
		r := (&cluster{t: t}).run(tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(r.stdout, w+"\n") {
				t.Errorf("%v: %q not offered:\n%s", tc.args, w, r)
			}
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := (&cluster{t: t}).run("completion", shell)
		if r.code != dlq.ExitOK || !strings.Contains(r.stdout, "dlq") {
			t.Errorf("completion %s: %s", shell, r)
		}
	}
}

func positionOf(p int, o int64) string { return fmt.Sprintf("%d:%d", p, o) }

func decodeExported(t *testing.T, text, b64 *string) string {
	t.Helper()
	switch {
	case text != nil:
		return *text
	case b64 != nil:
		b, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			t.Fatalf("bad base64 %q: %v", *b64, err)
		}
		return string(b)
	}
	return ""
}
