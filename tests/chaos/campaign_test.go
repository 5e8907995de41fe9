package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DefaultSeeds are the seeds `make test` runs; between them every kind of
// fault is injected (TestDefaultSeedsInjectEveryKind).
var DefaultSeeds = []uint64{1, 2, 3}

// DefaultOrders is the size of each campaign of `make test`.
const DefaultOrders = 2000

// TestCampaign runs one campaign per seed ($CHAOS_SEEDS, comma-separated,
// else DefaultSeeds) of $CHAOS_ORDERS orders (else DefaultOrders) and fails
// with the checker's findings, the schedule and the nemesis' log. It needs
// Docker (Postgres) and the binaries of `make build`; with -short, pgtest
// leaves it out, as every test that needs Docker in this repository.
func TestCampaign(t *testing.T) {
	seeds, orders, err := campaignFlags(os.Getenv("CHAOS_SEEDS"), os.Getenv("CHAOS_ORDERS"))
	if err != nil {
		t.Fatal(err)
	}
	var summaries []string
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("%s", NewSchedule(seed, orders))
			c, err := Run(t, seed, orders)
			if err != nil {
				if c != nil && c.Nemesis != nil {
					t.Logf("%s", c.Report())
				}
				t.Fatalf("campaign seed %d could not run: %v", seed, err)
			}
			summaries = append(summaries, c.Summary())
			if c.Failed() {
				t.Errorf("campaign seed %d broke the suite's promises (replay: make chaos SEED=%d ORDERS=%d):\n%s", seed, seed, orders, c.Report())
				return
			}
			t.Logf("%s", c.Summary())
		})
	}
	if path := os.Getenv("CHAOS_REPORT"); path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			_ = os.WriteFile(path, []byte(strings.Join(summaries, "")), 0o644)
		}
	}
}

// campaignFlags reads the seeds and the order count.
func campaignFlags(seeds, orders string) ([]uint64, int, error) {
	out := DefaultSeeds
	if seeds != "" {
		out = nil
		for _, s := range strings.Split(seeds, ",") {
			v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("CHAOS_SEEDS=%q: want comma-separated whole numbers", seeds)
			}
			out = append(out, v)
		}
	}
	n := DefaultOrders
	if orders != "" {
		v, err := strconv.Atoi(orders)
		if err != nil || v < 100 {
			return nil, 0, fmt.Errorf("CHAOS_ORDERS=%q: want a whole number of 100 or more", orders)
		}
		n = v
	}
	return out, n, nil
}

func TestScheduleIsAFunctionOfTheSeed(t *testing.T) {
	a, b := NewSchedule(7, 2000), NewSchedule(7, 2000)
	if a.String() != b.String() {
		t.Errorf("seed 7 gave two schedules:\n%s\n%s", a, b)
	}
	if c := NewSchedule(8, 2000); c.String() == a.String() {
		t.Errorf("seeds 7 and 8 gave the same schedule:\n%s", a)
	}
}

func TestScheduleKeepsFaultsOnOneTargetApartAndInsideTheWindow(t *testing.T) {
	for seed := range uint64(50) {
		s := NewSchedule(seed, 2000)
		lanes := map[string][]Fault{}
		for _, f := range s.Faults {
			if f.At < 0 || f.At+f.For > s.Window {
				t.Errorf("seed %d: %s ends after the window %s", seed, f, s.Window)
			}
			lane := f.Target
			switch f.Kind {
			case PostgresPause, PostgresRestart:
				lane = "postgres"
			case Inventory503, InventoryHang, Inventory401, Inventory422, Inventory3xx:
				lane = "inventory"
			case ProduceError:
				lane = "broker"
			case SIGKILL, SIGTERM:
			default:
				continue
			}
			for _, g := range lanes[lane] {
				if f.At < g.At+g.For && g.At < f.At+f.For {
					t.Errorf("seed %d: %s overlaps %s", seed, f, g)
				}
			}
			lanes[lane] = append(lanes[lane], f)
		}
	}
}

func TestDefaultSeedsInjectEveryKind(t *testing.T) {
	seen := map[Kind]int{}
	kills := map[string]bool{}
	for _, seed := range DefaultSeeds {
		s := NewSchedule(seed, DefaultOrders)
		for _, f := range s.Faults {
			seen[f.Kind]++
			if f.Kind == SIGKILL || f.Kind == SIGTERM {
				kills[string(f.Kind)+" "+f.Target[:strings.LastIndex(f.Target, "-")]] = true
			}
		}
	}
	for _, k := range Kinds {
		if seen[k] == 0 {
			t.Errorf("no default seed schedules %s", k)
		}
	}
	for _, want := range []string{"sigkill reefer-manager", "sigterm reefer-manager", "sigkill order-retry", "sigterm order-retry"} {
		if !kills[want] {
			t.Errorf("no default seed schedules %s", want)
		}
	}
}

func TestWindowGrowsWithTheOrders(t *testing.T) {
	if w := WindowFor(2000); w != 30*time.Second {
		t.Errorf("WindowFor(2000) = %s, want the 30 s floor", w)
	}
	if w := WindowFor(20000); w < 4*time.Minute {
		t.Errorf("WindowFor(20000) = %s, want the orders spread over 4 minutes or more", w)
	}
}
