package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/walsearch/walsearch/internal/config"
)

func (m *Main) configCommand() *cobra.Command {
	var defaults bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the configuration reference as a YAML file of the defaults",
		Long: `config --defaults prints a complete walsearch.yaml with every key at its
default, each under a comment saying what it means and which environment
variable and flag set it. docs/configuration.md lists the same.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if !defaults {
				return errors.New("config: give --defaults to print every key with its default")
			}
			_, err := fmt.Fprint(m.Stdout, config.DefaultsYAML())
			return err
		},
	}
	cmd.Flags().BoolVar(&defaults, "defaults", false, "print every key with its default and meaning, as YAML")
	return cmd
}
