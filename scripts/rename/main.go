// Command rename gives a fork of this repository its own module path prefix.
//
//	go run ./rename -to example.com/acme/coldchain    (from scripts/; `make rename MODULE=...` does this)
//
// It replaces the current prefix (read from pkg/kafkaretry/go.mod) in every
// text file of the tree: each go.mod and go.work, imports, Dockerfiles, docs,
// the Makefile.
// Only whole occurrences are replaced, so a path that merely starts with the
// prefix (github.com/reeferdlq/reefer-dlq-extras) is left alone. Only the
// files Git tracks or would track are read (outside Git: all but .git and
// bin/), and binary files are skipped.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rename:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("rename", flag.ContinueOnError)
	root := flags.String("root", ".", "root of the repository")
	from := flags.String("from", "", "prefix to replace (default: the module path of pkg/kafkaretry/go.mod without /pkg/kafkaretry)")
	to := flags.String("to", "", "new module path prefix, e.g. example.com/acme/coldchain")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("-to is required: the new module path prefix, e.g. -to example.com/acme/coldchain")
	}
	if err := checkPrefix(*to); err != nil {
		return err
	}
	if *from == "" {
		current, err := currentPrefix(*root)
		if err != nil {
			return err
		}
		*from = current
	}
	if *from == *to {
		fmt.Printf("module prefix is already %s; nothing to do\n", *to)
		return nil
	}

	changed, err := renameTree(*root, *from, *to)
	if err != nil {
		return err
	}
	for _, path := range changed {
		fmt.Println("  ", path)
	}
	fmt.Printf("renamed %s to %s in %d files\n", *from, *to, len(changed))
	return nil
}

// checkPrefix accepts what can stand before "/pkg" in an import path.
func checkPrefix(prefix string) error {
	if strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("module prefix %q: remove the trailing slash", prefix)
	}
	if err := module.CheckImportPath(prefix + "/pkg"); err != nil {
		return fmt.Errorf("module prefix %q is not a valid module path: %w", prefix, err)
	}
	return nil
}

// currentPrefix reads the prefix from pkg/kafkaretry/go.mod, the pattern's
// module, which every other module of the repository depends on.
func currentPrefix(root string) (string, error) {
	name := filepath.Join(root, "pkg", "kafkaretry", "go.mod")
	data, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("find the current module prefix: %w", err)
	}
	path := modfile.ModulePath(data)
	prefix, ok := strings.CutSuffix(path, "/pkg/kafkaretry")
	if !ok || prefix == "" {
		return "", fmt.Errorf("find the current module prefix: %s declares module %q, want <prefix>/pkg/kafkaretry (or pass -from)", name, path)
	}
	return prefix, nil
}

// skipDirs are never rewritten when the tree is not a Git work tree:
// version control data and build output.
var skipDirs = map[string]bool{".git": true, "bin": true}

// sourceFiles lists the files of the tree, relative to root: in a Git work
// tree the tracked and the new, not ignored files (so caches and build output
// are never touched), otherwise every regular file outside skipDirs.
func sourceFiles(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		var files []string
		for name := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
			info, err := os.Lstat(filepath.Join(root, name))
			if name == "" || err != nil || !info.Mode().IsRegular() {
				continue // deleted from the work tree, or a symlink
			}
			files = append(files, filepath.FromSlash(name))
		}
		return files, nil
	}

	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != root && skipDirs[d.Name()]:
			return filepath.SkipDir
		case !d.Type().IsRegular():
			return nil
		}
		rel, err := filepath.Rel(root, path)
		files = append(files, rel)
		return err
	})
	return files, err
}

// renameTree rewrites every text file of the tree that mentions from and
// returns the paths it changed, relative to root.
func renameTree(root, from, to string) ([]string, error) {
	files, err := sourceFiles(root)
	if err != nil {
		return nil, fmt.Errorf("list the files under %s: %w", root, err)
	}
	var changed []string
	for _, name := range files {
		path := filepath.Join(root, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return changed, err
		}
		if isBinary(data) {
			continue
		}
		out, n := replacePrefix(data, from, to)
		if n == 0 {
			continue
		}
		info, err := os.Stat(path)
		if err != nil {
			return changed, err
		}
		if err := os.WriteFile(path, out, info.Mode().Perm()); err != nil {
			return changed, fmt.Errorf("rewrite %s: %w", path, err)
		}
		changed = append(changed, name)
	}
	return changed, nil
}

// isBinary uses Git's rule of thumb: a NUL byte near the start.
func isBinary(data []byte) bool {
	return bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0
}

// replacePrefix replaces every whole occurrence of from in data and returns
// the result and the number of replacements. An occurrence is whole when the
// bytes around it cannot continue the path: ".../reefer-dlq/pkg",
// "reefer-dlq\"", "reefer-dlq.git" and "reefer-dlq." (end of a sentence)
// match; ".../reefer-dlq-extras" and "x.github.com/..." do not.
func replacePrefix(data []byte, from, to string) ([]byte, int) {
	var out bytes.Buffer
	n := 0
	for {
		i := bytes.Index(data, []byte(from))
		if i < 0 {
			out.Write(data)
			return out.Bytes(), n
		}
		end := i + len(from)
		whole := (i == 0 || !isNameByte(data[i-1]) && data[i-1] != '.') &&
			(end == len(data) || !isNameByte(data[end]))
		out.Write(data[:i])
		if whole {
			out.WriteString(to)
			n++
		} else {
			out.WriteString(from)
		}
		data = data[end:]
	}
}

// isNameByte reports whether b can continue a path element's name.
func isNameByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '-' || b == '_' || b == '~'
}
