package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestBoardList(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"board", "list"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"stm32f4-discovery", "netduinoplus2", "192 KiB", "arduino_nano_33_ble.repl", "32 KiB", "renode"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("board list lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBoardRunUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"board", "run"}, "--device must be"},
		{[]string{"board", "run", "--device", "Bad/x"}, "invalid namespace"},
		{[]string{"board", "run", "--device", "default/b", "--board", "esp32"}, `unknown board "esp32"`},
		{[]string{"board", "run", "--device", "default/b", "--ca-cert", "/nonexistent"}, "ca certificate"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want failure with %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

func TestBoardListOutputFormats(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-o", "json"}, 0, []string{`"name": "stm32f4-discovery"`, `"ramBytes": 196608`, `"emulator": "renode"`}},
		{[]string{"--output", "yaml"}, 0, []string{"boards:\n- appMemoryBytes:", "  name: mps2-an386\n"}},
		{[]string{"-o", "name"}, 0, []string{"stm32f4-discovery\n", "virtual\n"}},
		{[]string{"-o", "wide"}, 0, []string{"DESCRIPTION", "MAX MODULE", "cortex-m4"}},
		{[]string{"-o", "xml"}, 2, []string{`--output "xml"`}},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"board", "list"}, tc.args...), &out, &errb)
		for _, want := range tc.want {
			if code != tc.code || !strings.Contains(out.String()+errb.String(), want) {
				t.Errorf("board list %v: exit %d, lacks %q:\n%s%s", tc.args, code, want, out.String(), errb.String())
			}
		}
	}
}
