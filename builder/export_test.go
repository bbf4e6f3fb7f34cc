package builder

import (
	"context"
	"errors"
	"fmt"
)

// RunInSandbox runs a program the way every compiler step runs: argv[0] (an
// absolute path) is bound read-only with its libraries, as a toolchain is, in a
// fresh build directory. It returns the program's output and exit status, or why
// the sandbox could not run it.
func (b *Builder) RunInSandbox(ctx context.Context, argv []string) ([]byte, int, error) {
	v := newView()
	if err := v.addExecutable(argv[0]); err != nil {
		return nil, 0, err
	}
	sb, err := b.newSandbox(b.cfg.timeout)
	if err != nil {
		return nil, 0, err
	}
	defer sb.close()
	o := sb.run(ctx, v, argv)
	switch {
	case o.startErr != nil:
		return nil, 0, o.startErr
	case o.sandboxErr != "":
		return o.output, o.exitCode, errors.New(o.sandboxErr)
	case o.signal != 0:
		return o.output, o.exitCode, fmt.Errorf("killed by %s", o.signal)
	}
	return o.output, o.exitCode, nil
}
