package inventorymock_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
)

// BenchmarkAllocateHealthy measures the healthy path as reefer-manager uses it:
// PUT allocation calls with a JSON body, over loopback, with keep-alive, from
// concurrent clients. Client and server share the machine's cores, so the
// figure is a floor for the server alone. Goal: >= 20,000 req/s on 2 cores.
//
//	go test -run '^$' -bench AllocateHealthy -benchtime 100000x ./inventorymock/
func BenchmarkAllocateHealthy(b *testing.B) {
	_, base, _ := startService(b, inventorymock.Config{})
	const clients = 16
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport}
	var seq atomic.Int64

	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			order := fmt.Sprintf("O-%d", n)
			req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/containers/C-%d/allocation", base, n),
				strings.NewReader(`{"orderID":"`+order+`"}`))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", order)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
