// Compiles the interpreter source into this cgo package (cgo only builds files in the package directory).
#include "../wasm/wasm_num.c"
