package devbroker

import (
	"errors"
	"net"
)

// advertisedListener is a listener whose Addr reports the address clients
// are told to use. kfake builds its metadata and coordinator answers from
// Addr, and has no option of its own for an advertised address.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

// tcpAddr is a host:port that need not resolve, such as a container's name
// seen from the host.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

// oneListener returns a kfake.ListenFn that hands out ln once. kfake asks for
// one listener per broker and devbroker runs exactly one broker; the address
// kfake proposes (127.0.0.1 and a random port) is replaced by ours.
func oneListener(ln net.Listener) func(network, address string) (net.Listener, error) {
	given := false
	return func(network, address string) (net.Listener, error) {
		if given {
			return nil, errors.New("devbroker runs exactly one broker")
		}
		given = true
		return ln, nil
	}
}
