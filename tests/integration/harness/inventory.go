package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/testcontainers/testcontainers-go"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// The inventory mock's place on the stack's network.
const (
	InventoryAlias = "inventory"
	inventoryPort  = "8081"
	// InventoryURL is INVENTORY_URL of the services.
	InventoryURL = "http://" + InventoryAlias + ":" + inventoryPort
	// AdminToken guards the mock's admin API. The mock refuses to serve
	// it beyond loopback without one.
	AdminToken = "integration-admin-token"
)

// Inventory is the container-inventory-mock container and its admin API.
type Inventory struct {
	*Service
	// Admin steers the faults and reads the calls, counters and
	// containers (the typed client of the mock's module).
	Admin *admin.Client
}

// startInventory runs the mock with profile as its FAULT_PROFILE.
func startInventory(ctx context.Context, tb testing.TB, nw *testcontainers.DockerNetwork, image string, profile faults.Profile, env map[string]string) (*Inventory, error) {
	fp, err := json.Marshal(profile)
	if err != nil {
		return nil, fmt.Errorf("inventory fault profile: %w", err)
	}
	svc, err := StartService(ctx, tb, nw, ServiceSpec{
		Name:      InventoryAlias,
		Image:     image,
		Port:      inventoryPort,
		ReadyPath: "/healthz",
		Env: merge(map[string]string{
			"HTTP_ADDR":     ":" + inventoryPort,
			"ADMIN_TOKEN":   AdminToken,
			"FAULT_PROFILE": string(fp),
			"LOG_FORMAT":    "json",
			"LOG_LEVEL":     "info",
		}, env),
	})
	if err != nil {
		return nil, err
	}
	base, err := svc.URL(ctx)
	if err != nil {
		return nil, err
	}
	return &Inventory{Service: svc, Admin: admin.New(base, AdminToken)}, nil
}

// CallsInFlight returns the inventory calls the mock is answering right now
// (its inventory_mock_calls_in_flight gauge): with a latency fault, the
// calls the services are waiting on.
func (inv *Inventory) CallsInFlight(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, inv.Admin.BaseURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("inventory metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("inventory metrics: %s", resp.Status)
	}
	const gauge = "inventory_mock_calls_in_flight "
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), gauge); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("inventory metrics: %s%s: %w", gauge, v, err)
			}
			return int(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("inventory metrics: %w", err)
	}
	return 0, fmt.Errorf("inventory metrics: no %s gauge", strings.TrimSpace(gauge))
}
