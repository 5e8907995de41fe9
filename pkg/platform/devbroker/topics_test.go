package devbroker_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
)

func TestParseTopics(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]int
		wantErr []string
	}{
		{in: "", want: map[string]int{}},
		{in: "orders:6", want: map[string]int{"orders": 6}},
		{in: "orders:6,containers:6", want: map[string]int{"orders": 6, "containers": 6}},
		{in: " orders : 6 , order-dead-letter:3 ", want: map[string]int{"orders": 6, "order-dead-letter": 3}},
		{in: "orders", wantErr: []string{`"orders" has no partition count`, "name:partitions"}},
		{in: "orders:0", wantErr: []string{`partition count "0" is not a whole number of at least 1`}},
		{in: "orders:six", wantErr: []string{`partition count "six"`}},
		{in: ":6", wantErr: []string{"empty topic name"}},
		{in: "orders:6,,containers:6", wantErr: []string{"topic entry 2 is empty"}},
		{in: "orders:6,orders:3", wantErr: []string{"topic orders is listed twice"}},
		{in: "or/ders:1", wantErr: []string{`has '/'`}},
		{in: "..:1", wantErr: []string{`topic name ".." is not allowed`}},
		{in: strings.Repeat("x", 250) + ":1", wantErr: []string{"250 characters long"}},
		{in: "a:0,b", wantErr: []string{`"a:0"`, `"b" has no partition count`}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := devbroker.ParseTopics(tt.in)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ParseTopics(%q) = %v, want an error", tt.in, got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("ParseTopics(%q) error = %q, want it to contain %q", tt.in, err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTopics(%q) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseTopics(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
