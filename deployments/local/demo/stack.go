package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
	"github.com/reeferdlq/reefer-dlq/services/reefer-manager/manager"

	"github.com/reeferdlq/reefer-dlq/deployments/local/ordergen"
)

// The contract's topic names; the services read the same defaults.
const (
	topicOrders     = "orders"
	topicContainers = "containers"
	topicRetry      = "order-retries"
	topicDLQ        = "order-dead-letter"
)

// stack is everything the demo starts, in start order. close stops it in
// reverse order.
type stack struct {
	cfg Config
	tm  timing

	dir     string // temp dir: service log, SQLite file
	logPath string
	logFile *os.File
	log     *slog.Logger

	broker *devbroker.Broker // nil with --brokers
	kafka  kafkaclient.Config
	dbURL  string

	inventory *inventorymock.Service
	invURL    string
	admin     *admin.Client
	profile   faults.Profile // the inventory's profile when healthy

	// env is the environment each service was configured from, as a
	// deployment would set it.
	env      map[string]map[string]string
	services []*service

	// spans records every service's spans in memory, for the waterfall
	// of one order at the end; each service has a provider of its own,
	// so that each span says which service it came from.
	spans       *tracetest.SpanRecorder
	providersMu sync.Mutex
	providers   map[string]*sdktrace.TracerProvider
}

// tracer is the tracer provider of service: what its Config.Telemetry
// (or dlq.Env) gets instead of an OTLP exporter.
func (s *stack) tracer(service string) trace.TracerProvider {
	s.providersMu.Lock()
	defer s.providersMu.Unlock()
	if tp, ok := s.providers[service]; ok {
		return tp
	}
	if s.providers == nil {
		s.providers = map[string]*sdktrace.TracerProvider{}
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	s.providers[service] = tp
	return tp
}

// service is one service running in a goroutine.
type service struct {
	name, addr string
	cancel     context.CancelFunc
	done       chan error // receives Run's result, then is closed
	err        error
	stopped    bool
}

// startStack starts the broker, the database, the inventory mock,
// reefer-manager and order-retry, and waits until both services are ready.
// On error it stops what it started.
func startStack(ctx context.Context, cfg Config, tm timing) (_ *stack, err error) {
	s := &stack{cfg: cfg, tm: tm, env: map[string]map[string]string{}, spans: tracetest.NewSpanRecorder()}
	defer func() {
		if err != nil {
			s.close(false)
		}
	}()

	s.dir, err = os.MkdirTemp("", "reefer-dlq-demo-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	s.logPath = filepath.Join(s.dir, "services.log")
	s.logFile, err = os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("service log: %w", err)
	}
	s.log = slog.New(slog.NewTextHandler(s.logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// The broker, and the contract's topics on it.
	if len(cfg.Brokers) > 0 {
		s.kafka = kafkaclient.Config{Brokers: cfg.Brokers, ClientID: "reefer-dlq-demo"}
		ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := s.kafka.EnsureTopics(ectx, kafkaclient.DefaultTopics()); err != nil {
			return nil, fmt.Errorf("brokers %s: %w", strings.Join(cfg.Brokers, ","), err)
		}
	} else {
		s.broker, err = devbroker.Start(ctx, devbroker.Config{
			Listen: devbroker.DefaultListen,
			Topics: kafkaclient.DefaultTopics(),
			Log:    s.log.With("service", "devbroker"),
		})
		if err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		s.kafka = kafkaclient.Config{Brokers: []string{s.broker.Addr()}, ClientID: "reefer-dlq-demo"}
	}

	s.dbURL = cfg.PostgresURL
	if s.dbURL == "" {
		s.dbURL = "sqlite:" + filepath.Join(s.dir, "reefers.db")
	}

	// The inventory mock: healthy, except for the orders it always refuses.
	seed := int64(cfg.Seed)
	s.profile = faults.Profile{Seed: &seed, Rules: []faults.Rule{{
		Name:    "refuse-permanent-orders",
		OrderID: "^" + ordergen.PermanentPrefix,
		Status:  http.StatusUnprocessableEntity,
		Body:    json.RawMessage(`{"error":"unprocessable_entity","message":"this order cannot be served: customer account blocked"}`),
	}}}
	profileJSON, err := json.Marshal(s.profile)
	if err != nil {
		return nil, fmt.Errorf("inventory profile: %w", err)
	}
	invEnv := map[string]string{
		"HTTP_ADDR":     "127.0.0.1:0",
		"FAULT_PROFILE": string(profileJSON),
		"LOG_FORMAT":    "text",
	}
	invCfg, err := inventorymock.ConfigFromEnv(getenv(invEnv))
	if err != nil {
		return nil, fmt.Errorf("inventory mock: %w", err)
	}
	invCfg.Telemetry.Provider = s.tracer("container-inventory-mock")
	s.inventory, err = inventorymock.New(invCfg, s.log.With("service", "container-inventory-mock"))
	if err != nil {
		return nil, fmt.Errorf("inventory mock: %w", err)
	}
	if err := s.inventory.Start(ctx); err != nil {
		return nil, err
	}
	s.invURL = "http://" + s.inventory.Addr()
	invEnv["HTTP_ADDR"] = s.inventory.Addr()
	s.env["container-inventory-mock"] = invEnv
	s.admin = admin.New(s.invURL, "")

	// The two services, configured through their environment like any
	// deployment, only with the demo's short delays.
	common := map[string]string{
		"KAFKA_BROKERS":         strings.Join(s.kafka.Brokers, ","),
		"DATABASE_URL":          s.dbURL,
		"REEFER_FLEET_SIZE":     strconv.Itoa(max(1000, 2*(3*cfg.Orders+cfg.Permanent))),
		"INVENTORY_URL":         s.invURL,
		"INVENTORY_TIMEOUT":     "2s",
		"RELEASE_INTERVAL":      "1s",
		"LOG_FORMAT":            "text",
		"RETRY_MAX_ATTEMPTS":    strconv.Itoa(tm.maxAttempts),
		"RETRY_BASE_DELAY":      tm.retryBase.String(),
		"RETRY_MAX_DELAY":       tm.retryMax.String(),
		"RETRY_JITTER":          "proportional",
		"RETRY_JITTER_FRACTION": "0.1",
		"SHUTDOWN_TIMEOUT":      "10s",
	}
	// The two pipeline stages, each with its own client id and address,
	// from the same environment.
	// Each records its spans in memory (see tracer).
	managerFromEnv := func(getenv func(string) string) (manager.Config, error) {
		c, err := manager.ConfigFromEnv(getenv)
		c.Telemetry.Provider = s.tracer("reefer-manager")
		return c, err
	}
	retrierFromEnv := func(getenv func(string) string) (retrier.Config, error) {
		c, err := retrier.ConfigFromEnv(getenv)
		c.Telemetry.Provider = s.tracer("order-retry")
		return c, err
	}
	if err := startStage(ctx, s, "reefer-manager", common, managerFromEnv, manager.Run); err != nil {
		return nil, err
	}
	if err := startStage(ctx, s, "order-retry", common, retrierFromEnv, retrier.Run); err != nil {
		return nil, err
	}
	return s, nil
}

// startStage starts one pipeline service from common plus its own client id
// and a free HTTP address, through its real ConfigFromEnv and Run.
func startStage[C any](ctx context.Context, s *stack, name string, common map[string]string,
	fromEnv func(func(string) string) (C, error), run func(context.Context, *slog.Logger, C) error) error {
	env := withEnv(common, "KAFKA_CLIENT_ID", name)
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	env["HTTP_ADDR"] = addr
	cfg, err := fromEnv(getenv(env))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	s.env[name] = env
	return s.start(ctx, name, addr, func(ctx context.Context, log *slog.Logger) error { return run(ctx, log, cfg) })
}

// start runs a service in a goroutine and waits until its /readyz answers
// 200 (reefer-manager first, so that the two do not migrate the database
// at the same time).
func (s *stack) start(ctx context.Context, name, addr string, run func(context.Context, *slog.Logger) error) error {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	svc := &service{name: name, addr: addr, cancel: cancel, done: make(chan error, 1)}
	s.services = append(s.services, svc)
	log := s.log.With("service", name)
	go func() {
		err := run(sctx, log)
		svc.done <- err
		close(svc.done)
	}()

	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-svc.done:
			svc.stopped, svc.err = true, err
			if err == nil {
				err = errors.New("stopped at once")
			}
			return fmt.Errorf("%s did not start: %w (log: %s)", name, err, s.logPath)
		case <-wctx.Done():
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("%s not ready after 60s: see %s", name, s.logPath)
		case <-tick.C:
		}
		req, err := http.NewRequestWithContext(wctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if err != nil {
			return fmt.Errorf("%s readiness: %w", name, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
}

// failed returns the first service that stopped by itself, if any.
func (s *stack) failed() error {
	for _, svc := range s.services {
		if svc.stopped {
			continue
		}
		select {
		case err := <-svc.done:
			svc.stopped, svc.err = true, err
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			return fmt.Errorf("%s: %w (log: %s)", svc.name, err, s.logPath)
		default:
		}
	}
	return nil
}

// stopServices stops reefer-manager and order-retry (each drains, commits
// and closes within its SHUTDOWN_TIMEOUT) and returns their errors.
func (s *stack) stopServices() error {
	var errs []error
	for _, svc := range slices.Backward(s.services) {
		if svc.stopped {
			continue
		}
		svc.cancel()
		select {
		case err := <-svc.done:
			svc.stopped, svc.err = true, err
			if err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", svc.name, err))
			}
		case <-time.After(30 * time.Second):
			errs = append(errs, fmt.Errorf("stop %s: still running after 30s", svc.name))
		}
	}
	return errors.Join(errs...)
}

// close stops everything in reverse start order. keepFiles leaves the temp
// dir (the log, the SQLite file) in place.
func (s *stack) close(keepFiles bool) error {
	errs := []error{s.stopServices()}
	if s.inventory != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, s.inventory.Shutdown(ctx))
		cancel()
	}
	if s.broker != nil {
		errs = append(errs, s.broker.Close())
	}
	if s.logFile != nil {
		errs = append(errs, s.logFile.Close())
	}
	if s.dir != "" && !keepFiles {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}

// healthy puts the inventory back to its normal profile: it answers every
// call, except the orders it always refuses.
func (s *stack) healthy(ctx context.Context) error {
	_, err := s.admin.SetFaults(ctx, s.profile)
	return err
}

// flaky makes share of the inventory's calls fail with 503.
func (s *stack) flaky(ctx context.Context, share float64) error {
	p := s.profile
	p.ErrorRate, p.ErrorStatus = share, http.StatusServiceUnavailable
	_, err := s.admin.SetFaults(ctx, p)
	return err
}

// outage makes every inventory call fail with 503 until healthy is called.
func (s *stack) outage(ctx context.Context) error {
	p := s.profile
	p.Outage = &faults.Outage{Mode: faults.OutageStatus, Status: http.StatusServiceUnavailable}
	_, err := s.admin.SetFaults(ctx, p)
	return err
}

// probeURL is what dlq --when-healthy probes: an inventory route, which
// answers 503 during an outage. (The mock's /healthz is liveness only: it
// stays 200 whatever the fault profile, as a liveness probe should.)
func (s *stack) probeURL() string {
	return s.invURL + "/containers?status=available"
}

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func withEnv(base map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// freeAddr returns a loopback address with a port free right now. The
// services take an address to listen on, not a listener, so there is a
// short window where another process could take the port; the service
// then fails to start and the demo says so.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}
