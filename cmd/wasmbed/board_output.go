package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/wasmbed/wasmbed/api/boards"
)

// boardView is a catalogue board as `board list -o json|yaml` prints it.
type boardView struct {
	Name             string `json:"name"`
	Description      string `json:"description"`
	MCU              string `json:"mcu"`
	CPU              string `json:"cpu"`
	FPU              bool   `json:"fpu"`
	RAMBytes         int64  `json:"ramBytes"`
	FlashBytes       int64  `json:"flashBytes"`
	AppMemoryBytes   int64  `json:"appMemoryBytes"`
	MaxModuleBytes   int64  `json:"maxModuleBytes"`
	MaxTableElements uint32 `json:"maxTableElements,omitempty"`
	Emulator         string `json:"emulator"`
	Machine          string `json:"machine,omitempty"`
	UART             string `json:"uart,omitempty"`
	RenodePlatform   string `json:"renodePlatform,omitempty"`
}

// printBoards prints the board catalogue in an -o format other than the default table.
func printBoards(w io.Writer, format string) error {
	all := boards.All()
	switch format {
	case outputJSON, outputYAML:
		views := make([]boardView, 0, len(all))
		for _, b := range all {
			views = append(views, boardView{Name: b.Name, Description: b.Description, MCU: b.MCU, CPU: b.CPU, FPU: b.FPU,
				RAMBytes: b.RAMBytes, FlashBytes: b.FlashBytes, AppMemoryBytes: b.AppMemoryBytes, MaxModuleBytes: b.MaxModuleBytes,
				MaxTableElements: b.MaxTableElements, Emulator: string(b.Emulator), Machine: b.Machine, UART: b.UART, RenodePlatform: b.RenodePlatform})
		}
		return printData(w, format, map[string]any{"boards": views})
	case outputName:
		for _, b := range all {
			fmt.Fprintln(w, b.Name)
		}
		return nil
	case outputWide:
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "BOARD\tDESCRIPTION\tMCU\tCPU\tFPU\tRAM\tFLASH\tAPP MEMORY\tMAX MODULE\tEMULATOR\tMACHINE\tUART\tRENODE PLATFORM")
		for _, b := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, b.Description, b.MCU, b.CPU, strconv.FormatBool(b.FPU),
				boardSize(b.RAMBytes), boardSize(b.FlashBytes), boardSize(b.AppMemoryBytes), boardSize(b.MaxModuleBytes), b.Emulator,
				boardDash(b.Machine), boardDash(b.UART), boardDash(b.RenodePlatform))
		}
		return tw.Flush()
	}
	return usageError("--output %q: use json, yaml, wide or name (default: a table)", format)
}
