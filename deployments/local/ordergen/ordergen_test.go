package ordergen

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

var day = time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)

func take(g *Generator, n int) []Order {
	out := make([]Order, 0, n+2)
	for range n {
		out = append(out, g.Next())
	}
	return append(out, g.Permanent(), g.Permanent())
}

func TestSameSeedSameOrders(t *testing.T) {
	a, b := take(New(7, "", day), 300), take(New(7, "", day), 300)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("two generators with seed 7 differ (-first +second):\n%s", diff)
	}
	if c := take(New(8, "", day), 300); cmp.Equal(a, c) {
		t.Fatal("seeds 7 and 8 gave the same orders")
	}
}

func TestOrdersAreValidEventsWithTheOutcomeTheyDeserve(t *testing.T) {
	orders := take(New(1, "", day), 2000)
	counts := map[Outcome]int{}
	for _, o := range orders {
		env, err := events.New("/test", events.TypeOrderCreated, o.OrderID, o.OrderCreated, day)
		if err != nil {
			t.Fatalf("order %s is not a valid OrderCreated: %v", o.OrderID, err)
		}
		b, err := events.Encode(env)
		if err != nil {
			t.Fatalf("encode %s: %v", o.OrderID, err)
		}
		if _, _, err := events.DecodeOrderCreated(b); err != nil {
			t.Fatalf("order %s does not decode: %v", o.OrderID, err)
		}
		counts[o.Expect]++
		switch o.Expect {
		case Rejected:
			if o.Quantity <= reeferstore.MaxSeedCapacity {
				t.Errorf("%s expects rejection with quantity %d, which a reefer carries", o.OrderID, o.Quantity)
			}
		case Allocated:
			if o.Quantity < 1 || o.Quantity > reeferstore.MaxSeedCapacity {
				t.Errorf("%s expects allocation with quantity %d", o.OrderID, o.Quantity)
			}
		case DeadLettered:
			if !strings.HasPrefix(o.OrderID, PermanentPrefix) {
				t.Errorf("permanent order %s lacks the prefix %s", o.OrderID, PermanentPrefix)
			}
		}
		if o.PickupCity == o.DestinationCity {
			t.Errorf("%s goes from %s to itself", o.OrderID, o.PickupCity)
		}
	}
	// A few rejections, not many: the demo is about failures, not sizes.
	if r := counts[Rejected]; r < 40 || r > 130 {
		t.Errorf("%d of 2000 orders rejected; want about 4%%", r)
	}
}

func TestIDs(t *testing.T) {
	tests := []struct {
		name, run string
		want      []string
	}{
		{"alone", "", []string{"O-000001", "O-000002", "O-PERM-0001"}},
		{"shared broker", "r7", []string{"O-r7-000001", "O-r7-000002", "O-PERM-r7-0001"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(3, tt.run, day)
			got := []string{g.Next().OrderID, g.Next().OrderID, g.Permanent().OrderID}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}
