# How each module of testdata/corpus was built (hack/corpus.sh), in a fresh directory
# Rebuilds the module corpus of testdata/corpus: each program of testdata/corpus/src
# with today's compilers, once with the compiler's default wasm32 features and once for
# WebAssembly 1.0 (-mcpu=mvp / target-cpu=mvp). The .wasm files are committed, with the
# exact commands and toolchain versions in testdata/corpus/BUILD.txt, because
# toolchains change: the tests run the committed bytes, not a rebuild.
#
#   hack/corpus.sh        (needs clang-19, wasm-ld-19, rustc-web, rust-web-src: hack/deps.sh)
set -o errexit -o nounset -o pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
corpus="$root/testdata/corpus"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$root/builder/sdk/c/wasmbed.h" "$root/builder/sdk/rust/wasmbed.rs" "$work/"
printf '%s\n' log clock_ms sleep_ms yield gpio_write gpio_read led_set sensor_read publish config_get > "$work/wasmbed.imports"

abi_sysroot="$("$root/hack/rust-sysroot.sh")"
mvp_sysroot="$(WASM_FEATURES=mvp "$root/hack/rust-sysroot.sh")"

# Memory layout of every module: one 64 KiB page, the stack first (an overflow traps).
c_link=(-nostdlib -Wl,--no-entry -Wl,--strip-all -Wl,--gc-sections -Wl,--stack-first
  -Wl,-z,stack-size=8192 -Wl,--initial-memory=65536 -Wl,--allow-undefined-file=wasmbed.imports)
rust_link=(-C link-arg=--initial-memory=65536 -C link-arg=-zstack-size=8192 -C link-arg=--stack-first)

log="$work/BUILD.txt"
{
  echo "# How each module of testdata/corpus was built (hack/corpus.sh), in a fresh directory"
  echo "# with wasmbed.h, wasmbed.rs (builder/sdk) and wasmbed.imports beside the sources."
  echo "# $(clang-19 --version | head -1)"
  echo "# $(wasm-ld-19 --version)"
  echo "# $(/usr/bin/rustc --version)"
  echo "# Rust sysroots: hack/rust-sysroot.sh (default) and WASM_FEATURES=mvp hack/rust-sysroot.sh (mvp)."
} >"$log"

run() { # out.wasm command...
  local out="$1"
  shift
  (cd "$work" && "$@")
  printf '\n%s\n  %s\n' "$out" "$*" | sed "s#$work/##g; s#$abi_sysroot#<sysroot>#g; s#$mvp_sysroot#<sysroot-mvp>#g" >>"$log"
}

for src in "$corpus"/src/*.c; do
  name="$(basename "$src" .c)"
  cp "$src" "$work/"
  run "$name.default.wasm" clang-19 --target=wasm32 -O2 -ffreestanding -I. "${c_link[@]}" -o "$name.default.wasm" "$name.c"
  run "$name.mvp.wasm" clang-19 --target=wasm32 -mcpu=mvp -O2 -ffreestanding -I. "${c_link[@]}" -o "$name.mvp.wasm" "$name.c"
done
for src in "$corpus"/src/*.rs; do
  name="$(basename "$src" .rs)"
  cp "$src" "$work/"
  edition="$(sed -n 's#^//@ edition: *\([0-9]*\)#\1#p' "$src")"
  rust=(/usr/bin/rustc "--edition=${edition:-2021}" --crate-type=cdylib --crate-name="$name" --target=wasm32-unknown-unknown
    -C opt-level=s -C panic=abort -C lto -C codegen-units=1 -C strip=symbols -C linker=wasm-ld-19 "${rust_link[@]}")
  run "$name.default.wasm" "${rust[@]}" --sysroot "$abi_sysroot" -o "$name.default.wasm" "$name.rs"
  run "$name.mvp.wasm" "${rust[@]}" -C target-cpu=mvp --sysroot "$mvp_sysroot" -o "$name.mvp.wasm" "$name.rs"
done

rm -f "$corpus"/*.wasm
cp "$work"/*.wasm "$corpus/"
chmod 644 "$corpus"/*.wasm
{
  echo
  echo "# sha256"
  (cd "$corpus" && sha256sum ./*.wasm | sed 's#\./##')
} >>"$log"
cp "$log" "$corpus/BUILD.txt"
echo "corpus: $(ls "$corpus"/*.wasm | wc -l) modules in $corpus" >&2
