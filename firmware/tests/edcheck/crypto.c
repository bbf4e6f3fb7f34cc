/* cgo compiles only the files of the package directory: the verifier, included. */
#include "../../crypto/ed25519.c"
#include "../../crypto/sha512.c"
