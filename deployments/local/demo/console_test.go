package demo

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
)

// TestKeepRunningServesTheConsole checks what --keep-running prints as the
// console's address: a dlq console that answers there.
func TestKeepRunningServesTheConsole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := devbroker.Start(ctx, devbroker.Config{Topics: map[string]int{"order-dead-letter": 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	url := startConsole(ctx, b.Addr(), nil)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("console address: %q", url)
	}
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "Dead letters") {
		t.Errorf("GET %s: %d %s", url, res.StatusCode, body)
	}
}
