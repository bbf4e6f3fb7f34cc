// Compiles the ABI runtime into this cgo package (cgo only builds files in the package directory).
#include "../app/wasmbed_app.c"
