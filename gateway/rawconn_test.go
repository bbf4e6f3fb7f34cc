package gateway_test

import "syscall"

type (
	syscallRawConn     = syscall.RawConn
	syscallRawConnImpl = syscall.RawConn
)
