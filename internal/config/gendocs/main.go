// Command gendocs writes the configuration reference (docs/configuration.md)
// from the configuration's structs: go generate ./internal/config.
package main

import (
	"fmt"
	"os"

	"github.com/walsearch/walsearch/internal/config"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendocs <path of configuration.md>")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], []byte(config.ReferenceMarkdown()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
