package opsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/labstack/gommon/bytes"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/telemetry"
)

// Defaults applied by New to zero-valued Config fields. They suit a service that
// answers quickly; a service with slow handlers raises WriteTimeout.
const (
	DefaultAddr              = ":8080"
	DefaultBodyLimit         = "1M"
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultCheckTimeout      = 2 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
)

// Check reports whether one dependency is reachable. It must return promptly
// when ctx is done: readiness gives each check a short deadline.
type Check func(ctx context.Context) error

// Config configures a Server. The zero value of every field has a usable default.
type Config struct {
	// Addr is the TCP address to listen on, for example ":8081" or "127.0.0.1:0".
	// Default DefaultAddr.
	Addr string
	// Log receives server errors, panics and 5xx responses. Default: discard.
	Log *slog.Logger
	// Registry is the private Prometheus registry served on /metrics and used
	// for the HTTP metrics. Default: a new, empty registry (see Server.Registry).
	Registry *prometheus.Registry
	// RuntimeMetrics registers the Go runtime and process collectors on Registry.
	// Leave it false when the caller registers them itself.
	RuntimeMetrics bool
	// DisableHTTPMetrics turns off http_requests_total and
	// http_request_duration_seconds.
	DisableHTTPMetrics bool
	// Checks are run by /readyz, concurrently, keyed by the name shown in the
	// response body. No checks means always ready.
	Checks map[string]Check
	// CheckTimeout bounds each readiness check. Default DefaultCheckTimeout.
	CheckTimeout time.Duration
	// BodyLimit is the largest accepted request body, as "512K", "1M", "2MB".
	// Larger bodies get 413. Default DefaultBodyLimit.
	BodyLimit string
	// http.Server timeouts. Defaults: DefaultReadHeaderTimeout, DefaultReadTimeout,
	// DefaultWriteTimeout, DefaultIdleTimeout.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// ShutdownTimeout bounds the graceful shutdown done by Run. Default
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Tracing, when set, gives every request except the ops endpoints
	// (/healthz, /readyz, /metrics) a server span that continues the
	// caller's trace (see telemetry.StartServerSpan). nil: no spans.
	Tracing trace.TracerProvider
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = DefaultCheckTimeout
	}
	if c.BodyLimit == "" {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c
}

// Server is an Echo server with the operational endpoints mounted. Create it
// with New, mount routes on Echo(), then either Run it or Start and Shutdown it.
type Server struct {
	cfg  Config
	log  *slog.Logger
	echo *echo.Echo
	http *http.Server
	// cfgErr holds a configuration error found by New; Start reports it, so New
	// can keep its one-value signature.
	cfgErr error

	mu       sync.Mutex
	ln       net.Listener
	done     chan struct{} // closed when Serve has returned
	serveErr error         // read after done is closed
}

// New builds a Server from cfg. It does not listen yet; an invalid Config
// (such as an unparsable BodyLimit) is reported by Start.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: cfg.Log, done: make(chan struct{})}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// Without a proxy in front, the peer address is the client address; echo's
	// default would trust X-Forwarded-For from anyone.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.handleError
	s.echo = e

	limit, err := bytes.Parse(cfg.BodyLimit)
	if err != nil || limit <= 0 {
		s.cfgErr = fmt.Errorf("opsserver: body limit %q: want a size such as 512K or 1M", cfg.BodyLimit)
	}

	if cfg.RuntimeMetrics {
		if _, err := register(cfg.Registry, collectors.NewGoCollector()); err != nil {
			s.cfgErr = errors.Join(s.cfgErr, err)
		}
		if _, err := register(cfg.Registry, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			s.cfgErr = errors.Join(s.cfgErr, err)
		}
	}
	if !cfg.DisableHTTPMetrics {
		m, err := newHTTPMetrics(cfg.Registry)
		if err != nil {
			s.cfgErr = errors.Join(s.cfgErr, err)
		} else {
			e.Use(m.middleware)
		}
	}
	if cfg.Tracing != nil {
		e.Use(traceMiddleware(cfg.Tracing.Tracer(telemetry.ScopeName)))
	}
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisableStackAll: true, // the panicking goroutine's stack, not every goroutine's
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("panic in handler", "method", c.Request().Method, "route", c.Path(),
				"err", err, "stack", string(stack))
			return err
		},
	}))
	if limit > 0 {
		e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: cfg.BodyLimit}))
	}

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(metricsHandler(cfg.Registry, cfg.Log)))

	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn),
	}
	return s
}

// Echo returns the Echo instance, for mounting the service's routes before
// Start. The instance's middleware (metrics, recovery, body limit) applies to
// every route.
func (s *Server) Echo() *echo.Echo { return s.echo }

// Registry returns the registry served on /metrics (Config.Registry, or the one
// New created).
func (s *Server) Registry() *prometheus.Registry { return s.cfg.Registry }

// Start binds the listener and serves in the background. It returns once the
// address is bound (so Addr is valid), or with the error that prevented it.
func (s *Server) Start(ctx context.Context) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("opsserver: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("opsserver: listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	go func() {
		err := s.http.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr = err
		close(s.done)
	}()
	return nil
}

// Addr returns the bound address ("127.0.0.1:40123"), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Done is closed when the server has stopped serving, after Shutdown or
// because serving failed; Err then tells which.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns the error that stopped serving, or nil while serving and after
// a clean Shutdown.
func (s *Server) Err() error {
	select {
	case <-s.done:
		return s.serveErr
	default:
		return nil
	}
}

// Shutdown stops accepting connections and waits for in-flight requests until
// ctx is done; then it closes the connections that remain. It is safe to call
// before Start and more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started := s.ln != nil
	s.mu.Unlock()
	if !started {
		return nil
	}
	err := s.http.Shutdown(ctx)
	if err != nil {
		// Graceful shutdown ran out of time: cut the remaining connections, which
		// also cancels their request contexts.
		err = errors.Join(fmt.Errorf("opsserver: graceful shutdown: %w", err), s.http.Close())
	}
	<-s.done
	return errors.Join(err, s.serveErr)
}

// Run starts the server, serves until ctx is done (or serving fails), then
// shuts down gracefully within Config.ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-s.done:
		if s.serveErr != nil {
			return fmt.Errorf("opsserver: serve: %w", s.serveErr)
		}
		return nil // someone else called Shutdown
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	return s.Shutdown(sctx)
}

// traceMiddleware wraps each request in a server span named after its
// route; the ops endpoints, polled every few seconds, get none.
func traceMiddleware(tracer trace.Tracer) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			switch c.Path() {
			case "/healthz", "/readyz", "/metrics":
				return next(c)
			}
			r, span := telemetry.StartServerSpan(tracer, c.Request(), c.Path())
			c.SetRequest(r)
			err := next(c)
			if err != nil {
				// Write the response now, so the span records the status
				// the client receives.
				c.Error(err)
			}
			telemetry.EndServerSpan(span, c.Response().Status)
			return nil
		}
	}
}
