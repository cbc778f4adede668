package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/documents"
	"github.com/walsearch/walsearch/transform"
)

// loadDocuments reads the document definitions beside the scripts and
// checks them against PostgreSQL's catalog; a definition that does not
// fit the schema stops the start.
func (p *Pipeline) loadDocuments(ctx context.Context) error {
	connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, p.cfg.Postgres.URL) }
	plans, err := documents.Load(ctx, p.cfg.ScriptsDir, connect)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return &StartError{Err: err}
	}
	if len(plans) == 0 {
		return nil
	}
	// Tables listed in postgres.tables (or every table, when it is empty)
	// are indexed on their own as well; tables only a definition reads
	// are captured for it alone.
	own := documents.OwnTables(p.cfg.Postgres.Tables)
	a, err := documents.NewAssembler(documents.Config{Connect: connect, Own: own, Logger: p.log}, plans, p.Scripts)
	if err != nil {
		return &StartError{Err: err}
	}
	tables := a.Tables()
	slices.Sort(tables)
	for _, pl := range plans {
		p.log.Info("documents defined", "index", pl.Index, "tables", pl.Tables())
	}
	p.mu.Lock()
	p.docs, p.docTables, p.unverifiable = a, tables, documents.CapturedOnly(plans, own)
	p.newAssembler = func() (*documents.Assembler, error) {
		return documents.NewAssembler(documents.Config{Connect: connect, Own: own, Logger: p.log}, plans, p.Scripts)
	}
	p.rebuilder = documents.NewRebuilder(plans, p.Scripts)
	p.docRoots, p.docOnly = map[string]bool{}, map[string]bool{}
	for _, pl := range plans {
		p.docRoots[pl.Root.Table.QualifiedName()] = true
	}
	for _, t := range p.unverifiable {
		p.docOnly[t] = true
	}
	p.mu.Unlock()
	return nil
}

// mapper is the transform stage's mapper: the documents' assembler when
// documents are defined, the scripts otherwise.
func (p *Pipeline) mapper() transform.Mapper {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.docs != nil {
		return p.docs
	}
	return p.Scripts
}

// partitionMapper is the mapper of partition k's transform: an assembler
// reads PostgreSQL through one connection, one round at a time, so each
// partition other than 0 gets one of its own. Two partitions may rebuild
// the same document (a root's row and a child's row hash apart): each
// rebuild reads PostgreSQL after its change committed and carries that
// change's LSN as its version, so the rebuild of the latest change wins.
func (p *Pipeline) partitionMapper(k int) (transform.Mapper, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.docs == nil || k == 0 {
		if p.docs != nil {
			return p.docs, nil
		}
		return p.Scripts, nil
	}
	if a := p.partDocs[k]; a != nil {
		return a, nil
	}
	a, err := p.newAssembler()
	if err != nil {
		return nil, err
	}
	if p.partDocs == nil {
		p.partDocs = map[int]*documents.Assembler{}
	}
	p.partDocs[k] = a
	return a, nil
}

// withDocumentTables adds the tables the definitions read to a capture
// table list (an empty list captures every table already).
func (p *Pipeline) withDocumentTables(tables []string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(tables) == 0 || len(p.docTables) == 0 {
		return tables
	}
	have := map[string]bool{}
	for _, t := range tables {
		if schema, table, err := bus.ParseTable(t); err == nil {
			have[schema+"."+table] = true
		}
	}
	out := slices.Clone(tables)
	for _, t := range p.docTables {
		if !have[t] {
			out = append(out, t)
		}
	}
	return out
}

func (p *Pipeline) closeDocuments() error {
	if p.docs == nil {
		return nil
	}
	var errs []error
	for _, a := range p.partDocs {
		errs = append(errs, a.Close())
	}
	if err := errors.Join(append(errs, p.docs.Close())...); err != nil {
		return fmt.Errorf("close documents: %w", err)
	}
	return nil
}
