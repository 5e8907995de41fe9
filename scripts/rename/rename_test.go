package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

func TestReplacePrefixReplacesWholeOccurrencesOnly(t *testing.T) {
	const from, to = "example.org/old/prefix", "example.com/acme/coldchain"
	tests := []struct {
		name  string
		in    string
		want  string
		count int
	}{
		{"module line", "module example.org/old/prefix/pkg\n", "module example.com/acme/coldchain/pkg\n", 1},
		{"import", `import "example.org/old/prefix/pkg/backoff"`, `import "example.com/acme/coldchain/pkg/backoff"`, 1},
		{"replace directive", "replace example.org/old/prefix/pkg => ../../pkg", "replace example.com/acme/coldchain/pkg => ../../pkg", 1},
		{"end of a sentence", "The prefix is example.org/old/prefix.", "The prefix is example.com/acme/coldchain.", 1},
		{"clone URL", "https://example.org/old/prefix.git", "https://example.com/acme/coldchain.git", 1},
		{"quoted", `"example.org/old/prefix"`, `"example.com/acme/coldchain"`, 1},
		{"several", "example.org/old/prefix/a example.org/old/prefix/b", "example.com/acme/coldchain/a example.com/acme/coldchain/b", 2},
		{"longer name is another path", "example.org/old/prefix-extras/pkg", "example.org/old/prefix-extras/pkg", 0},
		{"inside another host", "cdn.example.org/old/prefix/pkg", "cdn.example.org/old/prefix/pkg", 0},
		{"no occurrence", "package backoff", "package backoff", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := replacePrefix([]byte(tt.in), from, to)
			if string(got) != tt.want || n != tt.count {
				t.Errorf("replacePrefix(%q) = %q, %d; want %q, %d", tt.in, got, n, tt.want, tt.count)
			}
		})
	}
}

func TestCheckPrefixRejectsInvalidModulePaths(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"example.com/acme/coldchain", true},
		{"github.com/acme/reefer-dlq", true},
		{"coldchain", true},
		{"example.com/acme/", false},
		{"example.com//acme", false},
		{"example.com/acme cold", false},
		{"../acme", false},
	}
	for _, tt := range tests {
		err := checkPrefix(tt.prefix)
		if (err == nil) != tt.ok {
			t.Errorf("checkPrefix(%q) = %v, want ok=%v", tt.prefix, err, tt.ok)
		}
	}
}

func TestRenameTreeSkipsBinaryFilesAndBuildOutput(t *testing.T) {
	const from, to = "example.org/old/prefix", "example.com/acme/coldchain"
	root := t.TempDir()
	files := map[string]string{
		"go.mod":          "module example.org/old/prefix/pkg\n",
		"docs/readme.md":  "Import example.org/old/prefix/pkg.\n",
		"bin/tool.txt":    "example.org/old/prefix\n",
		".git/config":     "url = https://example.org/old/prefix\n",
		"testdata/blob":   "\x00\x01example.org/old/prefix",
		"untouched/a.txt": "nothing here\n",
	}
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	changed, err := renameTree(root, from, to)
	if err != nil {
		t.Fatalf("renameTree: %v", err)
	}
	if got, want := strings.Join(changed, ","), "docs/readme.md,go.mod"; got != want {
		t.Errorf("changed files = %s, want %s", got, want)
	}
	want := map[string]string{
		"go.mod":         "module example.com/acme/coldchain/pkg\n",
		"docs/readme.md": "Import example.com/acme/coldchain/pkg.\n",
		"bin/tool.txt":   files["bin/tool.txt"],
		".git/config":    files[".git/config"],
		"testdata/blob":  files["testdata/blob"],
	}
	for name, content := range want {
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("%s = %q, want %q", name, got, content)
		}
	}
}

// TestMakeRenameLeavesABuildingTree is the forking promise: on a copy of this
// repository, `make rename` leaves no trace of the old prefix, and every
// module of the workspace builds and vets on its own (GOWORK=off).
func TestMakeRenameLeavesABuildingTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every module of a renamed copy of the repository; skipped with -short")
	}
	const newPrefix = "example.com/acme/coldchain"
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	oldPrefix, err := currentPrefix(repo)
	if err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(t.TempDir(), "fork")
	copyTree(t, repo, tree)

	// MAKEFLAGS from an outer make (say "make -n test") would turn this one
	// into a dry run that renames nothing.
	runIn(t, tree, []string{"MAKEFLAGS=", "MFLAGS="}, "make", "rename", "MODULE="+newPrefix)

	err = filepath.WalkDir(tree, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if _, n := replacePrefix(data, oldPrefix, newPrefix); n > 0 && !isBinary(data) {
			t.Errorf("%s still mentions %s %d times", path, oldPrefix, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	workData, err := os.ReadFile(filepath.Join(tree, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	work, err := modfile.ParseWork("go.work", workData, nil)
	if err != nil {
		t.Fatal(err)
	}
	// -mod=mod: a module whose go.mod is not tidy yet still proves the rename.
	env := []string{"GOWORK=off", "GOFLAGS=" + strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod")}
	for _, use := range work.Use {
		dir := filepath.Join(tree, use.Path)
		t.Run(use.Path, func(t *testing.T) {
			modData, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err != nil {
				t.Fatal(err)
			}
			if path := modfile.ModulePath(modData); !strings.HasPrefix(path, newPrefix+"/") {
				t.Errorf("module path %q does not start with %s/", path, newPrefix)
			}
			if !hasGoFiles(t, dir) {
				t.Logf("%s has no Go files yet: nothing to build", use.Path)
				return
			}
			runIn(t, dir, env, "go", "build", "-o", os.DevNull, "./...")
			runIn(t, dir, env, "go", "vet", "./...")
		})
	}
}

// hasGoFiles reports whether dir holds a Go file outside testdata.
func hasGoFiles(t *testing.T, dir string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case found:
			return filepath.SkipAll
		case d.IsDir() && d.Name() == "testdata":
			return filepath.SkipDir
		}
		found = !d.IsDir() && strings.HasSuffix(path, ".go")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// runIn runs a command in dir with extra environment and fails the test,
// showing the command's output, when it does not succeed.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
}

// copyTree copies the files of the repository that rename would see
// (tracked and new files, no build output), keeping file modes.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	files, err := sourceFiles(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		info, err := os.Stat(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(to, name)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	makefile, err := os.ReadFile(filepath.Join(to, "Makefile"))
	if err != nil || !bytes.Contains(makefile, []byte("\nrename:")) {
		t.Fatalf("the copy has no Makefile with a rename target (%v)", err)
	}
}
