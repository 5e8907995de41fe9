package harness

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"
)

// DLQRun is one run of the dlq CLI in a container on the stack's network,
// so that it reaches the broker as the services do.
type DLQRun struct {
	Args []string
	ctr  *testcontainers.DockerContainer
}

// DLQResult is how a dlq run ended.
type DLQResult struct {
	ExitCode int
	// Output is its standard output and standard error, interleaved.
	Output string
}

// StartDLQ starts `dlq args...` with the stack's brokers and topics in its
// environment and returns without waiting for it to finish, for commands
// that wait themselves (redrive --when-healthy, watch).
func (s *Stack) StartDLQ(ctx context.Context, args ...string) (*DLQRun, error) {
	env := map[string]string{
		"KAFKA_BROKERS": BrokerAddr,
		"DLQ_TOPIC":     s.Topics.DeadLetter,
		"RETRY_TOPIC":   s.Topics.Retry,
		"NO_COLOR":      "1",
	}
	ctr, err := testcontainers.Run(ctx, s.Images.DLQ,
		testcontainers.WithLogger(log.TestLogger(s.t)),
		network.WithNetwork(nil, s.Network),
		testcontainers.WithEnv(env),
		testcontainers.WithCmd(args...),
	)
	testcontainers.CleanupContainer(s.t, ctr)
	if err != nil {
		return nil, fmt.Errorf("start dlq %s: %w", strings.Join(args, " "), err)
	}
	return &DLQRun{Args: args, ctr: ctr}, nil
}

// Wait waits until the run ends and returns its exit code and output.
func (r *DLQRun) Wait(ctx context.Context) (DLQResult, error) {
	var code int
	err := retryUntil(ctx, 100*time.Millisecond, func() error {
		st, err := r.ctr.State(ctx)
		if err != nil {
			return err
		}
		if st.Running {
			return fmt.Errorf("dlq %s still running", strings.Join(r.Args, " "))
		}
		code = st.ExitCode
		return nil
	})
	if err != nil {
		return DLQResult{}, err
	}
	rc, err := r.ctr.Logs(ctx)
	if err != nil {
		return DLQResult{}, fmt.Errorf("output of dlq %s: %w", strings.Join(r.Args, " "), err)
	}
	defer rc.Close()
	out, err := io.ReadAll(rc)
	if err != nil {
		return DLQResult{}, fmt.Errorf("output of dlq %s: %w", strings.Join(r.Args, " "), err)
	}
	return DLQResult{ExitCode: code, Output: string(out)}, nil
}

// DLQ runs `dlq args...` to the end (see StartDLQ).
func (s *Stack) DLQ(ctx context.Context, args ...string) (DLQResult, error) {
	r, err := s.StartDLQ(ctx, args...)
	if err != nil {
		return DLQResult{}, err
	}
	return r.Wait(ctx)
}
