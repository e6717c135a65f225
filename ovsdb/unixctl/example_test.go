package unixctl_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"xvs/ovsdb/unixctl"
)

// A daemon registers its commands and listens; ovs-appctl -t SOCKET
// bond/show bond0 then sends the request written here by hand.
func Example() {
	dir, err := os.MkdirTemp("", "unixctl")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	s := unixctl.New()
	s.SetVersion("xvsd (xvs) 0.1.0")
	s.Register("bond/show", "[port]", 0, 1, func(args []string) (string, error) {
		if len(args) == 1 && args[0] != "bond0" {
			return "", errors.New("no such bond")
		}
		return "---- bond0 ----\nbond_mode: balance-slb", nil
	})
	sock := filepath.Join(dir, "xvsd.ctl")
	if err := s.Listen(sock); err != nil {
		panic(err)
	}
	defer s.Close()

	c, err := net.Dial("unix", sock)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	for _, req := range []string{
		`{"id":0,"method":"bond/show","params":["bond0"]}`,
		`{"id":1,"method":"bond/show","params":["bond1"]}`,
		`{"id":2,"method":"bond/show","params":["a","b"]}`,
	} {
		io.WriteString(c, req)
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		fmt.Println(strings.TrimSpace(string(buf[:n])))
	}
	// Output:
	// {"id":0,"result":"---- bond0 ----\nbond_mode: balance-slb\n","error":null}
	// {"id":1,"error":"no such bond\n"}
	// {"id":2,"error":"\"bond/show\" command takes at most 1 arguments\n"}
}
