package metrics

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Kind is the type of a metric family.
type Kind string

// The kinds the scanner tells apart. Untyped is a family defined by
// prometheus.NewDesc, whose type is chosen when its values are collected.
const (
	Counter   Kind = "counter"
	Gauge     Kind = "gauge"
	Histogram Kind = "histogram"
	Summary   Kind = "summary"
	Untyped   Kind = "untyped"
)

// Family is one metric family defined in the source.
type Family struct {
	Name string
	Kind Kind
	// Pos is file:line of the definition.
	Pos string
	// Standard is true for the Go runtime and process collectors of
	// client_golang's collectors package, whose families (go_*, process_*)
	// are not spelled in the scanned code.
	Standard bool
}

// Series returns the names of the series a family exports: a histogram's
// _bucket, _sum and _count, a summary's quantiles, _sum and _count, and
// the name itself otherwise.
func (f Family) Series() []string {
	switch f.Kind {
	case Histogram:
		return []string{f.Name + "_bucket", f.Name + "_sum", f.Name + "_count"}
	case Summary:
		return []string{f.Name, f.Name + "_sum", f.Name + "_count"}
	}
	return []string{f.Name}
}

const clientGolang = "github.com/prometheus/client_golang/prometheus"

var optsKinds = map[string]Kind{
	"CounterOpts":   Counter,
	"GaugeOpts":     Gauge,
	"HistogramOpts": Histogram,
	"SummaryOpts":   Summary,
}

// Scan reads the non-test Go files below each directory and returns the
// metric families they define, sorted by name. A family whose name is not
// made of string constants is an error that names its position.
//
// One exception is how a family shared by several services is written:
// its Namespace (or BuildFQName's first argument) may be a string
// parameter of the function that defines it, when every call of that
// function in the scanned code passes a string constant there. Such a
// family is a template, defined once per namespace passed; a template that
// no call instantiates, or a call whose argument is not a constant, is an
// error.
func Scan(dirs ...string) ([]Family, error) {
	var (
		families  []Family
		templates []template
		calls     []call
		errs      []error
	)
	for _, dir := range dirs {
		pkgs, err := packageFiles(dir)
		if err != nil {
			return nil, err
		}
		for _, files := range pkgs {
			f, t, c, err := scanPackage(files)
			families, templates, calls = append(families, f...), append(templates, t...), append(calls, c...)
			errs = append(errs, err)
		}
	}
	f, err := instantiate(templates, calls)
	families = append(families, f...)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(families, func(a, b Family) int { return strings.Compare(a.Name, b.Name) })
	return families, nil
}

// parsed is one parsed file.
type parsed struct {
	fset *token.FileSet
	file *ast.File
}

// packageFiles parses every non-test Go file below dir, grouped by
// directory (one package per directory).
func packageFiles(dir string) (map[string][]parsed, error) {
	pkgs := map[string][]parsed{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != dir && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], parsed{fset: fset, file: f})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	return pkgs, nil
}

// scanPackage finds the families defined in the files of one package,
// the templates among them (see Scan), and every call of a function in
// the package's files, with its constant string arguments.
func scanPackage(files []parsed) ([]Family, []template, []call, error) {
	consts := stringConsts(files)
	var (
		families  []Family
		templates []template
		calls     []call
		errs      []error
	)
	for _, pf := range files {
		pos := func(n ast.Node) string {
			p := pf.fset.Position(n.Pos())
			return fmt.Sprintf("%s:%d", p.Filename, p.Line)
		}
		calls = append(calls, callsIn(pf.file, consts, pos)...)
		prom, collectors := importNames(pf.file)
		if prom == "" && collectors == "" {
			continue
		}
		// The function being walked and its parameters, for templates.
		var fn *ast.FuncDecl
		param := func(e ast.Expr) int {
			id, ok := e.(*ast.Ident)
			if !ok || fn == nil {
				return -1
			}
			i := 0
			for _, field := range fn.Type.Params.List {
				for _, name := range field.Names {
					if name.Name == id.Name {
						return i
					}
					i++
				}
				if len(field.Names) == 0 {
					i++
				}
			}
			return -1
		}
		// define adds a family, or a template when its namespace is
		// parameter nsParam of fn.
		define := func(n ast.Node, parts [3]string, nsParam int, kind Kind) {
			if nsParam < 0 {
				families = append(families, Family{Name: fqName(parts[0], parts[1], parts[2]), Kind: kind, Pos: pos(n)})
				return
			}
			templates = append(templates, template{fn: fn.Name.Name, param: nsParam,
				subsystem: parts[1], name: parts[2], kind: kind, pos: pos(n)})
		}
		str := func(e ast.Expr) (string, error) {
			switch e := e.(type) {
			case *ast.BasicLit:
				if e.Kind == token.STRING {
					return strconv.Unquote(e.Value)
				}
			case *ast.Ident:
				if v, ok := consts[e.Name]; ok {
					return v, nil
				}
			}
			return "", fmt.Errorf("%s: metric name part %s is not a string constant: the scanner cannot read it", pos(e), describe(e))
		}
		inspect := func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				kind, ok := optsKinds[selectorOf(n.Type, prom)]
				if !ok {
					return true
				}
				var parts [3]string // Namespace, Subsystem, Name
				nsParam := -1
				for _, elt := range n.Elts {
					kv, ok := elt.(*ast.KeyValueExpr)
					if !ok {
						errs = append(errs, fmt.Errorf("%s: %s without field names: the scanner cannot read it", pos(n), describe(n.Type)))
						return true
					}
					i := slices.Index([]string{"Namespace", "Subsystem", "Name"}, identName(kv.Key))
					if i < 0 {
						continue
					}
					if i == 0 && param(kv.Value) >= 0 {
						nsParam = param(kv.Value)
						continue
					}
					v, err := str(kv.Value)
					if err != nil {
						errs = append(errs, err)
						return true
					}
					parts[i] = v
				}
				if parts[2] == "" {
					errs = append(errs, fmt.Errorf("%s: %s without Name", pos(n), describe(n.Type)))
					return true
				}
				define(n, parts, nsParam, kind)
			case *ast.CallExpr:
				switch selectorOf(n.Fun, prom) {
				case "NewDesc":
					if len(n.Args) == 0 {
						return true
					}
					parts, nsParam, err := descName(n.Args[0], prom, str, param)
					if err != nil {
						errs = append(errs, err)
						return true
					}
					define(n, parts, nsParam, Untyped)
				}
				switch selectorOf(n.Fun, collectors) {
				case "NewGoCollector":
					families = append(families, standard(goCollector, pos(n))...)
				case "NewProcessCollector":
					families = append(families, standard(processCollector, pos(n))...)
				}
			}
			return true
		}
		for _, decl := range pf.file.Decls {
			fn, _ = decl.(*ast.FuncDecl)
			ast.Inspect(decl, inspect)
		}
	}
	return families, templates, calls, errors.Join(errs...)
}

// descName reads the first argument of prometheus.NewDesc: a constant or a
// prometheus.BuildFQName of constants, whose namespace may be parameter
// nsParam (>= 0) of the enclosing function.
func descName(e ast.Expr, prom string, str func(ast.Expr) (string, error), param func(ast.Expr) int) (parts [3]string, nsParam int, err error) {
	call, ok := e.(*ast.CallExpr)
	if !ok || selectorOf(call.Fun, prom) != "BuildFQName" || len(call.Args) != 3 {
		parts[2], err = str(e)
		return parts, -1, err
	}
	nsParam = param(call.Args[0])
	for i, a := range call.Args {
		if i == 0 && nsParam >= 0 {
			continue
		}
		if parts[i], err = str(a); err != nil {
			return parts, -1, err
		}
	}
	return parts, nsParam, nil
}

// template is a family whose namespace is parameter param of function fn
// (see Scan).
type template struct {
	fn              string
	param           int
	subsystem, name string
	kind            Kind
	pos             string
}

// call is one call of a function named fn (a plain or a package-qualified
// name); args holds the constant string arguments by position, and
// unknown the positions of the others.
type call struct {
	fn      string
	args    map[int]string
	unknown map[int]bool
	pos     string
}

// callsIn lists the calls in f.
func callsIn(f *ast.File, consts map[string]string, pos func(ast.Node) string) []call {
	var calls []call
	ast.Inspect(f, func(n ast.Node) bool {
		ce, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		var fn string
		switch fun := ce.Fun.(type) {
		case *ast.Ident:
			fn = fun.Name
		case *ast.SelectorExpr:
			fn = fun.Sel.Name
		default:
			return true
		}
		c := call{fn: fn, args: map[int]string{}, unknown: map[int]bool{}, pos: pos(ce)}
		for i, a := range ce.Args {
			switch a := a.(type) {
			case *ast.BasicLit:
				if v, err := strconv.Unquote(a.Value); err == nil && a.Kind == token.STRING {
					c.args[i] = v
					continue
				}
			case *ast.Ident:
				if v, ok := consts[a.Name]; ok {
					c.args[i] = v
					continue
				}
			}
			c.unknown[i] = true
		}
		calls = append(calls, c)
		return true
	})
	return calls
}

// instantiate defines each template once for every namespace its
// function's calls pass.
func instantiate(templates []template, calls []call) ([]Family, error) {
	var (
		families []Family
		errs     []error
	)
	for _, t := range templates {
		seen := map[string]bool{}
		for _, c := range calls {
			if c.fn != t.fn {
				continue
			}
			ns, ok := c.args[t.param]
			if !ok {
				if c.unknown[t.param] {
					errs = append(errs, fmt.Errorf("%s: %s's namespace argument is not a string constant: the scanner cannot read the metric defined at %s", c.pos, t.fn, t.pos))
				}
				continue
			}
			if !seen[ns] {
				seen[ns] = true
				families = append(families, Family{Name: fqName(ns, t.subsystem, t.name), Kind: t.kind, Pos: t.pos})
			}
		}
		if len(seen) == 0 {
			errs = append(errs, fmt.Errorf("%s: metric %s takes its namespace from a parameter of %s, and no call of %s passes a constant", t.pos, t.name, t.fn, t.fn))
		}
	}
	return families, errors.Join(errs...)
}

// fqName joins the non-empty parts with "_", as prometheus.BuildFQName does.
func fqName(namespace, subsystem, name string) string {
	var parts []string
	for _, p := range []string{namespace, subsystem, name} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "_")
}

// stringConsts maps the package's string constants, at any scope, to their
// values. Two constants of one name in different scopes are ambiguous and
// left out, so that a name built from them is reported, not guessed.
func stringConsts(files []parsed) map[string]string {
	consts := map[string]string{}
	ambiguous := map[string]bool{}
	for _, pf := range files {
		ast.Inspect(pf.file, func(n ast.Node) bool {
			gd, ok := n.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				return true
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						continue
					}
					if old, seen := consts[name.Name]; seen && old != v {
						ambiguous[name.Name] = true
					}
					consts[name.Name] = v
				}
			}
			return true
		})
	}
	for name := range ambiguous {
		delete(consts, name)
	}
	return consts
}

// importNames returns the names under which the file imports client_golang's
// prometheus and collectors packages ("" when it does not).
func importNames(f *ast.File) (prom, collectors string) {
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		switch path {
		case clientGolang:
			prom = name
		case clientGolang + "/collectors":
			collectors = name
		}
	}
	return prom, collectors
}

// selectorOf returns Sel of pkg.Sel when the expression is one, else "".
func selectorOf(e ast.Expr, pkg string) string {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || pkg == "" {
		return ""
	}
	if id, ok := sel.X.(*ast.Ident); ok && id.Name == pkg {
		return sel.Sel.Name
	}
	return ""
}

func identName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// describe names an expression for an error message.
func describe(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return describe(e.X) + "." + e.Sel.Name
	case *ast.CallExpr:
		return describe(e.Fun) + "(...)"
	}
	return fmt.Sprintf("%T", e)
}
