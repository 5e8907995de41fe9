package harness

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// readyTimeout bounds a service's start (or restart) until /readyz
// answers 200. A service that exits at start (a bad variable) shows its
// reason in the log the failed test prints.
const readyTimeout = 90 * time.Second

// ServiceSpec describes one service container.
type ServiceSpec struct {
	// Name is the container's alias on the network (other containers reach
	// it as Name:Port) and the name of its log file.
	Name  string
	Image string
	// Port is the port of HTTP_ADDR, where /readyz answers once the
	// service's dependencies are reachable.
	Port string
	Env  map[string]string
	Cmd  []string
	// ReadyPath is where the start waits for a 200; default /readyz. The
	// inventory mock waits on /healthz: its /readyz fails while an outage
	// is injected, and a scenario may start it in one.
	ReadyPath string
}

// Service is a running service container.
type Service struct {
	Name      string
	Container *testcontainers.DockerContainer
	port      string
}

// StartService runs spec on nw and returns once its ReadyPath answers 200.
// The container is removed when the test ends, its log kept (see the
// package documentation).
func StartService(ctx context.Context, tb testing.TB, nw *testcontainers.DockerNetwork, spec ServiceSpec) (*Service, error) {
	port := spec.Port + "/tcp"
	readyPath := spec.ReadyPath
	if readyPath == "" {
		readyPath = "/readyz"
	}
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithLogger(log.TestLogger(tb)),
		network.WithNetwork([]string{spec.Name}, nw),
		testcontainers.WithExposedPorts(port),
		testcontainers.WithEnv(spec.Env),
		testcontainers.WithWaitStrategy(wait.ForHTTP(readyPath).WithPort(port).
			WithPollInterval(100 * time.Millisecond).WithStartupTimeout(readyTimeout)),
		// The test process, as HostAlias: an in-test OTLP receiver.
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.ExtraHosts = append(hc.ExtraHosts, HostAlias+":host-gateway")
		}),
	}
	if len(spec.Cmd) > 0 {
		opts = append(opts, testcontainers.WithCmd(spec.Cmd...))
	}
	ctr, err := testcontainers.Run(ctx, spec.Image, opts...)
	// Before the error check, so that a container that never became ready
	// is removed too. No grace period at the end of the test: the outcome
	// has been checked by then.
	testcontainers.CleanupContainer(tb, ctr, testcontainers.StopTimeout(0))
	keepLogs(tb, spec.Name, ctr)
	if err != nil {
		return nil, fmt.Errorf("start %s from %s: %w", spec.Name, spec.Image, err)
	}
	return &Service{Name: spec.Name, Container: ctr, port: port}, nil
}

// Kill sends SIGKILL, as a crash or the OOM killer would: no shutdown
// code runs, nothing is drained or committed. It returns once the
// container has stopped.
func (s *Service) Kill(ctx context.Context) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("kill %s: %w", s.Name, err)
	}
	defer cli.Close()
	if _, err := cli.ContainerKill(ctx, s.Container.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("kill %s: %w", s.Name, err)
	}
	return retryUntil(ctx, 50*time.Millisecond, func() error {
		st, err := s.Container.State(ctx)
		if err != nil {
			return err
		}
		if st.Running {
			return fmt.Errorf("%s still running", s.Name)
		}
		return nil
	})
}

// Stop sends SIGTERM and waits up to grace for a clean shutdown (then
// SIGKILL), as an orchestrator scaling down does.
func (s *Service) Stop(ctx context.Context, grace time.Duration) error {
	if err := s.Container.Stop(ctx, &grace); err != nil {
		return fmt.Errorf("stop %s: %w", s.Name, err)
	}
	return nil
}

// Start starts a killed or stopped service again, with the same
// configuration, and returns once /readyz answers 200.
func (s *Service) Start(ctx context.Context) error {
	if err := s.Container.Start(ctx); err != nil {
		return fmt.Errorf("restart %s: %w", s.Name, err)
	}
	return nil
}

// URL is the base URL of the service's HTTP port as the test process
// reaches it. Ask again after a restart: Docker may publish another port.
func (s *Service) URL(ctx context.Context) (string, error) {
	ep, err := s.Container.PortEndpoint(ctx, s.port, "http")
	if err != nil {
		return "", fmt.Errorf("address of %s: %w", s.Name, err)
	}
	return ep, nil
}
