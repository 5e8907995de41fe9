package inventorymock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/buildinfo"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/opsserver"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/telemetry"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/store"
)

// Service is one running mock inventory: the HTTP server, the fault engine,
// the containers and the call log.
type Service struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	faults  *faults.Engine
	store   *store.Store
	calls   *calls.Log
	metrics *metrics
	srv     *opsserver.Server
	tracing *telemetry.Provider

	// stopping is closed when shutdown begins, so that calls held by an
	// injected timeout or latency end at once instead of delaying shutdown.
	stopping chan struct{}
	stopOnce sync.Once
}

// New builds the service from cfg (zero fields take DefaultConfig's values).
// It does not listen yet: call Run, or Start and Shutdown.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := time.Now
	engine, err := faults.New(cfg.FaultProfile, now)
	if err != nil {
		return nil, fmt.Errorf("fault profile: %w", err)
	}
	s := &Service{
		cfg:      cfg,
		log:      log,
		now:      now,
		faults:   engine,
		store:    store.New(now),
		calls:    calls.NewLog(cfg.CallLogSize),
		stopping: make(chan struct{}),
	}

	reg := prometheus.NewRegistry()
	s.metrics, err = newMetrics(reg, s.store)
	if err != nil {
		return nil, err
	}
	// The exporter connects lazily: no context is needed to build it.
	s.tracing, err = telemetry.New(context.Background(), cfg.Telemetry, "container-inventory-mock", buildinfo.Read().Version)
	if err != nil {
		return nil, err
	}
	s.srv = opsserver.New(opsserver.Config{
		Addr:           cfg.HTTPAddr,
		Log:            log,
		Registry:       reg,
		RuntimeMetrics: true,
		BodyLimit:      cfg.BodyLimit,
		// Calls held by injected latency or timeouts move their own write
		// deadline (see wait); the defaults suit everything else.
		ShutdownTimeout: cfg.ShutdownTimeout,
		Checks:          map[string]opsserver.Check{"inventory": s.outageCheck},
		// Each inventory call continues its caller's trace.
		Tracing: s.tracing.Tracing(),
	})
	s.routes(s.srv.Echo())
	return s, nil
}

// errOutage is the readiness error while an outage is injected.
var errOutage = errors.New("an outage is injected: the inventory routes fail until it ends or is healed")

// outageCheck makes /readyz tell the truth about the inventory the mock
// plays: not ready while an outage is injected, so that a caller waiting
// for the inventory (dlq redrive --when-healthy .../readyz) waits it out.
// Error rates and latency leave it ready: the inventory answers, if badly.
// /healthz and the admin API stay up whatever the faults.
func (s *Service) outageCheck(context.Context) error {
	if s.faults.Profile().Outage != nil {
		return errOutage
	}
	return nil
}

func (s *Service) routes(e *echo.Echo) {
	e.GET("/containers", s.inventoryRoute(faults.RouteListContainers, s.parseList, s.listContainers))
	e.GET("/containers/:containerID", s.inventoryRoute(faults.RouteGetContainer, s.parseContainer, s.getContainer))
	e.PUT("/containers/:containerID/allocation", s.inventoryRoute(faults.RouteAllocate, s.parseAllocate, s.allocate))
	e.DELETE("/containers/:containerID/allocation", s.inventoryRoute(faults.RouteRelease, s.parseRelease, s.release))

	a := e.Group("/admin", s.requireToken)
	a.GET("/faults", s.getFaults)
	a.PUT("/faults", s.putFaults)
	a.PATCH("/faults", s.patchFaults)
	a.DELETE("/faults", s.deleteFaults)
	a.POST("/outage", s.postOutage)
	a.GET("/calls", s.getCalls)
	a.GET("/stats", s.getStats)
	a.GET("/containers", s.adminContainers)
	a.POST("/reset", s.postReset)
}

// Start listens and serves in the background; it returns once the address is
// bound. The demo and tests use it with HTTPAddr "127.0.0.1:0".
func (s *Service) Start(ctx context.Context) error {
	if err := s.srv.Start(ctx); err != nil {
		return fmt.Errorf("start inventory mock: %w", err)
	}
	p := s.faults.Profile()
	s.log.Info("inventory mock listening", "addr", s.srv.Addr(), "seed", *p.Seed,
		"adminTokenRequired", s.cfg.AdminToken != "")
	return nil
}

// Addr returns the bound address, or "" before Start.
func (s *Service) Addr() string { return s.srv.Addr() }

// Shutdown ends held calls, then stops the server gracefully within ctx.
func (s *Service) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	if err := errors.Join(s.srv.Shutdown(ctx), s.tracing.Shutdown(ctx)); err != nil {
		return fmt.Errorf("shut down inventory mock: %w", err)
	}
	return nil
}

// Run serves until ctx is done, then shuts down within ShutdownTimeout.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case <-s.srv.Done():
		serveErr = s.srv.Err()
	}
	s.log.Info("inventory mock shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := errors.Join(serveErr, s.Shutdown(sctx)); err != nil {
		return err
	}
	s.log.Info("inventory mock stopped")
	return nil
}

// Run builds the service from cfg and runs it until ctx is done: the entry
// point main and the local demo share.
func Run(ctx context.Context, log *slog.Logger, cfg Config) error {
	s, err := New(cfg, log)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
