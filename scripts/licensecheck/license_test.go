package licensecheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

const root = "../.."

func TestRepositoryIsApacheLicensed(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	if err != nil {
		t.Fatalf("no LICENSE: nobody may legally fork or import the suite: %v", err)
	}
	text := string(raw)
	for _, want := range []string{"Apache License", "Version 2.0, January 2004", "END OF TERMS AND CONDITIONS", "The reefer-dlq authors"} {
		if !strings.Contains(text, want) {
			t.Errorf("LICENSE lacks %q", want)
		}
	}
}

func TestEveryModuleReadmeNamesTheLicense(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	work, err := modfile.ParseWork("go.work", raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{"."}
	for _, u := range work.Use {
		dirs = append(dirs, u.Path)
	}
	for _, dir := range dirs {
		readme := filepath.Join(root, dir, "README.md")
		b, err := os.ReadFile(readme)
		if err != nil {
			t.Errorf("module %s has no README naming its license: %v", dir, err)
			continue
		}
		rel, err := filepath.Rel(filepath.Join(root, dir), filepath.Join(root, "LICENSE"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "Apache-2.0") || !strings.Contains(string(b), "]("+filepath.ToSlash(rel)+")") {
			t.Errorf("%s does not name the license (Apache-2.0, a link to %s)", readme, rel)
		}
	}
}
