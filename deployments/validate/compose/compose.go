package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrNotFound means neither `docker compose` nor `docker-compose` runs here.
var ErrNotFound = errors.New("neither `docker compose` (Compose v2) nor `docker-compose` (v1.28+) is installed")

// Tool is a Compose implementation.
type Tool struct {
	// Argv is the command: ["docker", "compose"] or ["docker-compose"].
	Argv []string
	// Version is what `version --short` printed.
	Version string
}

func (t Tool) String() string { return strings.Join(t.Argv, " ") + " " + t.Version }

// Find returns the Compose implementation of this machine: the docker CLI's
// compose plugin when it answers, else docker-compose.
func Find(ctx context.Context) (Tool, error) {
	for _, argv := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		if _, err := exec.LookPath(argv[0]); err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, argv[0], append(argv[1:], "version", "--short")...).Output()
		if err != nil {
			continue
		}
		return Tool{Argv: argv, Version: strings.TrimSpace(string(out))}, nil
	}
	return Tool{}, ErrNotFound
}

// Config runs `config` on file for the project name and the profiles, with
// exactly the environment env (KEY=value entries: the caller decides what
// interpolation sees), and decodes the resolved project.
func (t Tool) Config(ctx context.Context, file, project string, profiles, env []string) (Project, error) {
	args := append(slices.Clone(t.Argv[1:]), "-f", file, "-p", project)
	for _, p := range profiles {
		args = append(args, "--profile", p)
	}
	args = append(args, "config")
	cmd := exec.CommandContext(ctx, t.Argv[0], args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Project{}, fmt.Errorf("%s %s: %w: %s", t.Argv[0], strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	var p Project
	if err := yaml.Unmarshal(stdout.Bytes(), &p); err != nil {
		return Project{}, fmt.Errorf("decode the output of %s config: %w", t, err)
	}
	p.Profiles = slices.Clone(profiles)
	return p, nil
}

// Project is a resolved Compose project.
type Project struct {
	Services map[string]Service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
	// Profiles are the profiles Config was asked for.
	Profiles []string `yaml:"-"`
}

// Active returns the names of the services that `up` starts with the
// project's profiles, sorted.
func (p Project) Active() []string {
	var out []string
	for name, s := range p.Services {
		if len(s.Profiles) == 0 || slices.ContainsFunc(s.Profiles, func(x string) bool { return slices.Contains(p.Profiles, x) }) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Service is one resolved service.
type Service struct {
	Image       string                `yaml:"image"`
	Build       *Build                `yaml:"build"`
	Hostname    string                `yaml:"hostname"`
	Environment map[string]*string    `yaml:"environment"`
	Profiles    []string              `yaml:"profiles"`
	DependsOn   map[string]Dependency `yaml:"depends_on"`
	Volumes     []Volume              `yaml:"volumes"`
	Entrypoint  []string              `yaml:"entrypoint"`
	Healthcheck *Healthcheck          `yaml:"healthcheck"`
}

// Env returns the environment with unset (null) variables left out.
func (s Service) Env() map[string]string {
	env := make(map[string]string, len(s.Environment))
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

// Build is how a service's image is built.
type Build struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Args       map[string]string `yaml:"args"`
}

// Dependency is one entry of depends_on.
type Dependency struct {
	Condition string `yaml:"condition"`
}

// Healthcheck is a service's health test.
type Healthcheck struct {
	Test []string `yaml:"test"`
}

// Volume is one mount, from the short syntax (v1 prints "src:dst:ro") or
// the long one (v2).
type Volume struct {
	Type     string `yaml:"type"` // bind or volume
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only"`
}

// UnmarshalYAML reads either syntax.
func (v *Volume) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		type long Volume // no UnmarshalYAML: no recursion
		return n.Decode((*long)(v))
	}
	var short string
	if err := n.Decode(&short); err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	parts := strings.Split(short, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Errorf("volume %q: want source:target[:mode]", short)
	}
	v.Source, v.Target = parts[0], parts[1]
	v.ReadOnly = len(parts) == 3 && slices.Contains(strings.Split(parts[2], ","), "ro")
	v.Type = "volume"
	if strings.HasPrefix(v.Source, "/") || strings.HasPrefix(v.Source, ".") {
		v.Type = "bind"
	}
	return nil
}
