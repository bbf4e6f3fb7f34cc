package boardtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
)

// regWrite is one entry of a board's watchdog sequences (boards/common/board.h, wb_reg_write).
type regWrite struct{ addr, value, width uint32 }

func (w regWrite) String() string { return fmt.Sprintf("%#x <- %#x (%d B)", w.addr, w.value, w.width) }

// sequence reads the zero-terminated wb_reg_write array at symbol name.
func (im *image) sequence(name string) []regWrite {
	var seq []regWrite
	at := im.symbol(name)
	for i := uint64(0); i < 16; i++ {
		w := regWrite{im.word(at + 12*i), im.word(at + 12*i + 4), im.word(at + 12*i + 8)}
		if w.addr == 0 {
			return seq
		}
		seq = append(seq, w)
	}
	im.t.Fatalf("%s: %s has no end", im.path, name)
	return nil
}

// Bounds of every watchdog's timeout: longer than the longest pass of the main loop
// (a poll waits at most 1 s; an app call is bounded by fuel; the STM32's store erases
// a 128 KiB sector in at most 2 s) at the fastest clock the chip allows, and short
// enough that a stuck board comes back within seconds at the slowest.
const (
	minTimeout = 2500 * time.Millisecond
	maxTimeout = 8 * time.Second
)

// watchdogs decodes each board's start sequence with the chip's own timeout formula
// (its reference manual) and checks the feed sequence. Each returns the timeouts at the
// watchdog clock's extremes.
var watchdogs = map[string]func(t *testing.T, start, feed []regWrite) (fast, slow time.Duration){
	// CMSDK APB watchdog (Arm DDI0479C): LOAD counts WDOGCLK (the 25 MHz system clock of
	// the AN386); INTEN raises the NMI at the first expiry, RESEN resets at the second.
	"mps2-an386": func(t *testing.T, start, feed []regWrite) (time.Duration, time.Duration) {
		const base, unlock = 0x40008000, 0x1acce551
		want(t, start, regWrite{base + 0xc00, unlock, 4}, regWrite{base + 0x00, 0, 4}, regWrite{base + 0x08, 3, 4},
			regWrite{base + 0xc00, 0, 4})
		want(t, feed, regWrite{base + 0xc00, unlock, 4}, regWrite{base + 0x0c, 1, 4}, regWrite{base + 0xc00, 0, 4})
		d := ticks(uint64(start[1].value), 25_000_000)
		return d, d
	},
	// STM32F4 IWDG (RM0090 19.4): the LSI (17-47 kHz, datasheet DS8626 table 39) / 4<<PR,
	// RLR + 1 counts; KR 0xCCCC starts, 0x5555 unlocks PR and RLR, 0xAAAA reloads.
	"stm32f4-discovery": func(t *testing.T, start, feed []regWrite) (time.Duration, time.Duration) {
		const kr, pr, rlr = 0x40003000, 0x40003004, 0x40003008
		want(t, start, regWrite{kr, 0xcccc, 4}, regWrite{kr, 0x5555, 4}, regWrite{pr, 0, 4}, regWrite{rlr, 0, 4},
			regWrite{kr, 0xaaaa, 4})
		want(t, feed, regWrite{kr, 0xaaaa, 4})
		if start[2].value > 6 || start[3].value > 0xfff {
			t.Fatalf("IWDG PR %d (0..6), RLR %#x (12 bits)", start[2].value, start[3].value)
		}
		counts := uint64(4<<start[2].value) * uint64(start[3].value+1)
		return ticks(counts, 47_000), ticks(counts, 17_000)
	},
	// nRF52840 WDT (product specification 6.36): (CRV + 1) / 32768 s on the LFCLK (RC
	// oscillator +-5 % uncalibrated); RR[0] reload requests only; CONFIG.SLEEP counts
	// while the CPU sleeps; CRV, RREN and CONFIG written before TASKS_START.
	"nrf52840-nano33ble": func(t *testing.T, start, feed []regWrite) (time.Duration, time.Duration) {
		const base = 0x40010000
		want(t, start, regWrite{base + 0x504, 0, 4}, regWrite{base + 0x508, 1, 4}, regWrite{base + 0x50c, 1, 4},
			regWrite{base, 1, 4})
		want(t, feed, regWrite{base + 0x600, 0x6e524635, 4})
		counts := uint64(start[0].value) + 1
		return ticks(counts*100, 32768*105), ticks(counts*100, 32768*95)
	},
	// RA4M1 WDT (user's manual 24.2): PCLKB (24 MHz, board_init) / CKS, TOPS counts;
	// RPES = RPSS = 3 (no refresh window), WDTRCR.RSTIRQS (reset); register-start mode:
	// the first refresh (0x00 then 0xff to WDTRR) starts it.
	"arduino-uno-r4": func(t *testing.T, start, feed []regWrite) (time.Duration, time.Duration) {
		const rr, cr, rcr, cstpr = 0x40044200, 0x40044202, 0x40044206, 0x40044208
		want(t, start, regWrite{cr, 0, 2}, regWrite{rcr, 0x80, 1}, regWrite{cstpr, 0, 1}, regWrite{rr, 0, 1},
			regWrite{rr, 0xff, 1})
		want(t, feed, regWrite{rr, 0, 1}, regWrite{rr, 0xff, 1})
		v := start[0].value
		div := map[uint32]uint64{1: 4, 4: 64, 15: 128, 6: 512, 7: 2048, 8: 8192}[v>>4&0xf]
		if div == 0 || v>>8&3 != 3 || v>>12&3 != 3 || v&^0x33f3 != 0 {
			t.Fatalf("WDTCR %#x: CKS not a divider, a refresh window, or reserved bits set", v)
		}
		d := ticks([]uint64{1024, 4096, 8192, 16384}[v&3]*div, 24_000_000)
		return d, d
	},
}

// want checks seq against the expected writes; a zero value means any value.
func want(t *testing.T, seq []regWrite, exp ...regWrite) {
	t.Helper()
	if len(seq) != len(exp) {
		t.Fatalf("sequence %v, want %d writes", seq, len(exp))
	}
	for i, e := range exp {
		if w := seq[i]; w.addr != e.addr || w.width != e.width || (e.value != 0 && w.value != e.value) {
			t.Fatalf("write %d is %v, want %v", i, w, e)
		}
	}
}

func ticks(counts, hz uint64) time.Duration { return time.Duration(counts * uint64(time.Second) / hz) }

// TestWatchdogs checks every board's watchdog as built, from the register writes in its
// image: the registers are the chip's, it resets (or, on the MPS2, raises the NMI that
// fault.c turns into a recorded reset) and its timeout lies within bounds at both ends
// of its clock's tolerance. Only the MPS2's runs here (qemutest, TestFaultsReported):
// QEMU models no other of these watchdogs.
func TestWatchdogs(t *testing.T) {
	for _, im := range images {
		t.Run(im.board, func(t *testing.T) {
			check := watchdogs[im.board]
			if check == nil {
				t.Fatalf("no watchdog check for %s", im.board)
			}
			img := open(t, fwbuild.Image(t, im.board))
			fast, slow := check(t, img.sequence("board_wdt_start"), img.sequence("board_wdt_feed"))
			if fast < minTimeout || slow > maxTimeout {
				t.Errorf("timeout %v to %v, want within [%v, %v]", fast, slow, minTimeout, maxTimeout)
			}
			// every fault and the NMI reach the recording handler
			vectors, entry := img.symbol("vectors"), uint32(img.symbol("fault_entry")|1)
			for n := uint64(2); n <= 6; n++ {
				if got := img.word(vectors + 4*n); got != entry {
					t.Errorf("vector %d is %#x, want fault_entry %#x", n, got, entry)
				}
			}
			t.Logf("timeout %v to %v", fast.Round(time.Millisecond), slow.Round(time.Millisecond))
		})
	}
}
