// Compiles the shared UTF-8 validator into this cgo package (cgo only builds files in the package directory).
#include "../common/utf8.c"
