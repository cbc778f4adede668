package documents

import (
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// File is the name of a definition inside its index's folder of the
// scripts directory, beside the index's transform.js.
const File = "document.yaml"

// MaxDepth bounds how deeply relations nest.
const MaxDepth = 16

// Kind says how a relation embeds its rows.
type Kind string

// The relation kinds.
const (
	// One embeds the single row the parent references (many-to-one:
	// order → customer) as an object, or null when there is none.
	One Kind = "one"
	// Many embeds the rows that reference the parent (one-to-many:
	// order → items), or the rows linked to it through a join table
	// (many-to-many: product ↔ tags), as an array.
	Many Kind = "many"
)

// Definition is a document definition as written: the root table and what
// to embed.
type Definition struct {
	// Table is the root table: "table" (public) or "schema.table". Each of
	// its rows is one document, its primary key the document's id.
	Table string `json:"table"`
	// Columns are the root's columns to take; empty takes them all.
	Columns []string `json:"columns,omitempty"`
	// As renames columns in the document: column → field name.
	As map[string]string `json:"as,omitempty"`
	// Relations are embedded in each document.
	Relations []Relation `json:"relations,omitempty"`
}

// Relation is one embedded table.
type Relation struct {
	// Name is the field the relation takes in its parent's object.
	Name string `json:"name"`
	// Table is the embedded table: "table" or "schema.table".
	Table string `json:"table"`
	// Kind is one or many.
	Kind Kind `json:"kind"`
	// Columns are the table's columns to take; empty takes them all.
	Columns []string `json:"columns,omitempty"`
	// As renames columns in the embedded objects: column → field name.
	As map[string]string `json:"as,omitempty"`
	// ForeignKey names the referencing columns: the parent's for one, the
	// embedded table's for many, the join table's (towards the parent)
	// for many through a join table. Empty: read from the catalog.
	ForeignKey []string `json:"foreign_key,omitempty"`
	// References names the referenced columns, the other side of
	// ForeignKey. Empty: the referenced table's primary key.
	References []string `json:"references,omitempty"`
	// Through is the join table of a many-to-many relation.
	Through string `json:"through,omitempty"`
	// ThroughKey names the join table's columns referencing the embedded
	// table. Empty: read from the catalog.
	ThroughKey []string `json:"through_key,omitempty"`
	// ThroughReferences names the embedded table's columns ThroughKey
	// references. Empty: its primary key.
	ThroughReferences []string `json:"through_references,omitempty"`
	// OrderBy orders a many relation's array, by the embedded table's
	// columns; "column desc" sorts descending. The embedded table's
	// primary key always follows, so the order is total.
	OrderBy []string `json:"order_by,omitempty"`
	// Relations nest further.
	Relations []Relation `json:"relations,omitempty"`
}

// DefinitionError is a problem with a definition, naming its file.
type DefinitionError struct {
	Path string
	Err  error
}

func (e *DefinitionError) Error() string {
	return "document definition " + e.Path + ": " + e.Err.Error()
}

func (e *DefinitionError) Unwrap() error { return e.Err }

// Parse reads a definition and checks what can be checked without the
// database: required fields, kinds, names, depth. path names the file in
// errors.
func Parse(path string, data []byte) (*Definition, error) {
	var d Definition
	if err := yaml.UnmarshalStrict(data, &d); err != nil {
		return nil, &DefinitionError{Path: path, Err: fmt.Errorf("parse: %w", err)}
	}
	if err := d.check(); err != nil {
		return nil, &DefinitionError{Path: path, Err: err}
	}
	return &d, nil
}

// check reports every problem that needs no catalog.
func (d *Definition) check() error {
	var errs []error
	if strings.TrimSpace(d.Table) == "" {
		errs = append(errs, errors.New("table: required (the root table, e.g. orders or shop.orders)"))
	}
	errs = append(errs, checkFields("", d.Columns, d.As))
	errs = append(errs, checkRelations("", d.Relations, 1)...)
	return errors.Join(errs...)
}

func checkRelations(at string, rels []Relation, depth int) []error {
	var errs []error
	if len(rels) > 0 && depth > MaxDepth {
		return []error{fmt.Errorf("%srelations: nested deeper than %d levels", at, MaxDepth)}
	}
	seen := map[string]bool{}
	for i := range rels {
		r := &rels[i]
		where := fmt.Sprintf("%srelations[%d]", at, i)
		if r.Name != "" {
			where = at + r.Name
		}
		switch {
		case r.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: required (the field the relation takes in the document)", where))
		case seen[r.Name]:
			errs = append(errs, fmt.Errorf("%s: name used twice at the same level", where))
		}
		seen[r.Name] = true
		if strings.TrimSpace(r.Table) == "" {
			errs = append(errs, fmt.Errorf("%s.table: required", where))
		}
		switch r.Kind {
		case One:
			if r.Through != "" || len(r.ThroughKey) > 0 || len(r.ThroughReferences) > 0 {
				errs = append(errs, fmt.Errorf("%s: through is for kind many (a many-to-many relation)", where))
			}
			if len(r.OrderBy) > 0 {
				errs = append(errs, fmt.Errorf("%s.order_by: only a kind many relation is an array", where))
			}
		case Many:
			if r.Through == "" && (len(r.ThroughKey) > 0 || len(r.ThroughReferences) > 0) {
				errs = append(errs, fmt.Errorf("%s: through_key and through_references need through (the join table)", where))
			}
		default:
			errs = append(errs, fmt.Errorf("%s.kind: want one (embed the referenced row) or many (embed the referencing rows as an array), got %q", where, r.Kind))
		}
		for _, o := range r.OrderBy {
			if _, _, err := parseOrder(o); err != nil {
				errs = append(errs, fmt.Errorf("%s.order_by: %w", where, err))
			}
		}
		errs = append(errs, checkFields(where+".", r.Columns, r.As))
		errs = append(errs, checkRelations(where+".", r.Relations, depth+1)...)
	}
	return errs
}

// checkFields checks a column list and its renames.
func checkFields(at string, cols []string, as map[string]string) error {
	var errs []error
	seen := map[string]bool{}
	for _, c := range cols {
		if c == "" {
			errs = append(errs, fmt.Errorf("%scolumns: empty column name", at))
		}
		if seen[c] {
			errs = append(errs, fmt.Errorf("%scolumns: %q listed twice", at, c))
		}
		seen[c] = true
	}
	for c, f := range as {
		if f == "" {
			errs = append(errs, fmt.Errorf("%sas.%s: empty field name", at, c))
		}
	}
	return errors.Join(errs...)
}

// parseOrder reads "column" or "column asc|desc".
func parseOrder(s string) (col string, desc bool, err error) {
	f := strings.Fields(s)
	switch {
	case len(f) == 1:
		return f[0], false, nil
	case len(f) == 2 && strings.EqualFold(f[1], "asc"):
		return f[0], false, nil
	case len(f) == 2 && strings.EqualFold(f[1], "desc"):
		return f[0], true, nil
	}
	return "", false, fmt.Errorf("want \"column\", \"column asc\" or \"column desc\", got %q", s)
}
