// Package shop is the example shop: its schema and the document
// definitions of its orders and products indices, for walsearch's
// scripts_dir (see docs/documents.md). The demo (examples/demo) runs on it.
package shop

import (
	"embed"
	"io/fs"
	"os"
)

// Schema creates customers, products, tags, product_tags, orders and
// order_items.
//
//go:embed schema.sql
var Schema string

//go:embed scripts
var scripts embed.FS

// WriteScripts writes the definitions into dir, a scripts_dir.
func WriteScripts(dir string) error {
	sub, err := fs.Sub(scripts, "scripts")
	if err != nil {
		return err
	}
	return os.CopyFS(dir, sub)
}
