package unixctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawClient is a test client that writes bytes and reads whatever comes
// back until the server closes the connection or goes quiet.
type rawClient struct {
	t *testing.T
	c net.Conn
}

func dial(t *testing.T, sock string) *rawClient {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t, c}
}

func (r *rawClient) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads until EOF or until quiet has passed with no data (waiting
// up to 10s for the first byte); eof reports which.
func (r *rawClient) recv(quiet time.Duration) (data string, eof bool) {
	var b bytes.Buffer
	buf := make([]byte, 64<<10)
	for {
		wait := quiet
		if b.Len() == 0 {
			wait = max(wait, 10*time.Second)
		}
		r.c.SetReadDeadline(time.Now().Add(wait))
		n, err := r.c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String(), !errors.Is(err, os.ErrDeadlineExceeded)
		}
	}
}

// expect reads len(want) bytes and requires them to be want.
func (r *rawClient) expect(want string) {
	r.t.Helper()
	got := make([]byte, len(want))
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(r.c, got); err != nil {
		r.t.Fatalf("reading %q: got %q: %v", want, got, err)
	}
	if string(got) != want {
		r.t.Fatalf("got %s\nwant %s", got, want)
	}
}

func quietServer() *Server {
	s := newTestServer()
	s.SetLogger(slog.New(slog.DiscardHandler))
	return s
}

func TestRawReplies(t *testing.T) {
	sock := startServer(t, quietServer())
	c := dial(t, sock)
	// Pipelined requests, any id type, whitespace between messages:
	// replies come in order, ids echoed.
	c.send(`{"id":"abc","method":"version","params":[]}` + "\n\t " +
		`{"params":["x", "y"],"method":"xvs/echo","id":[1,{"a":null}]}{"id":7,"method":"nope","params":[]}` +
		`{"id":8,"method":"xvs/echo","params":["<&>\u2028\u00e9"],"result":null,"error":null}` +
		`{"id":9,"method":"xvs/echo","params":[1]}`)
	c.expect(`{"id":"abc","result":"xvsd (xvs) 0.1.0\n","error":null}` +
		`{"id":[1,{"a":null}],"result":"x|y\n","error":null}` +
		`{"id":7,"error":"\"nope\" is not a valid command (use \"list-commands\" to see a list of valid commands)\n"}` +
		"{\"id\":8,\"result\":\"<&>\u2028é\\n\",\"error\":null}" +
		`{"id":9,"error":"\"xvs/echo\" command has non-string argument\n"}`)
	// The connection stays usable.
	c.send(`{"id":10,"method":"xvs/empty","params":[]}`)
	c.expect(`{"id":10,"result":"","error":null}`)
}

// TestRawClosesOnlyBadConnection sends each kind of message OVS refuses
// and checks that the server closes that connection without a reply while
// another connection keeps working.
func TestRawClosesOnlyBadConnection(t *testing.T) {
	sock := startServer(t, quietServer())
	good := dial(t, sock)
	bad := []string{
		`{"id":1,"method":"vers`, // truncated, then EOF
		`{"id":1 xx}`,            // malformed
		`"str"`,                  // not an object
		`[1,2]`,                  // not an object
		`{"id":null,"method":"version","params":[]}`,          // notification
		`{"method":"version","params":[]}`,                    // notification
		`{"id":1,"method":"version"}`,                         // no params
		`{"id":1,"method":"version","params":{}}`,             // params not array
		`{"id":1,"method":"version","params":"a"}`,            // params not array
		`{"id":1,"method":5,"params":[]}`,                     // method not string
		`{"id":1,"method":"version","params":[],"x":1}`,       // unexpected member
		`{"id":1,"METHOD":"version","params":[]}`,             // member names are case-sensitive
		`{"id":1,"result":"x","error":null}`,                  // reply
		`{"id":1,"result":null,"error":"x"}`,                  // error reply
		`{"id":1,"method":"version","params":[]]`,             // mismatched bracket
		"{\"id\":1,\"method\":\"version\xff\",\"params\":[]}", // invalid UTF-8
		"{\"id\":1,\"method\":\"version\",\"params\":[]}\x00", // NUL after
		`{"id":1,"method":"version","params":[]}}`,            // reply, then garbage
	}
	for _, msg := range bad {
		c := dial(t, sock)
		c.send(msg)
		if strings.HasPrefix(msg, `{"id":1,"method":"vers`) && !strings.Contains(msg, "params") {
			c.c.(*net.UnixConn).CloseWrite()
		}
		data, eof := c.recv(5 * time.Second)
		if !eof {
			t.Errorf("%q: connection not closed", msg)
		}
		data = strings.TrimPrefix(data, `{"id":1,"result":"xvsd (xvs) 0.1.0\n","error":null}`)
		if data != "" {
			t.Errorf("%q: unexpected reply %q", msg, data)
		}
		good.send(`{"id":2,"method":"version","params":[]}`)
		good.expect(`{"id":2,"result":"xvsd (xvs) 0.1.0\n","error":null}`)
	}
}

func TestRawTooLarge(t *testing.T) {
	sock := startServer(t, quietServer())
	c := dial(t, sock)
	// Within the bound: served.
	arg := strings.Repeat("a", MaxMessageSize-100)
	c.send(`{"id":1,"method":"xvs/echo","params":["` + arg + `"]}`)
	c.expect(`{"id":1,"result":"` + arg + `\n","error":null}`)
	// Beyond it: closed, even before the message ends.
	go func() {
		io.WriteString(c.c, `{"id":2,"method":"xvs/echo","params":["`)
		io.WriteString(c.c, strings.Repeat("a", MaxMessageSize+1))
	}()
	if data, eof := c.recv(10 * time.Second); !eof || data != "" {
		t.Errorf("oversized message: got %q, eof %v; want close", data, eof)
	}
}

// TestRawManyClients holds many connections open at once, each with a
// request in a handler that waits for all the others.
func TestRawManyClients(t *testing.T) {
	const n = 200
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	s := quietServer()
	s.Register("xvs/barrier", "", 0, 1, func(args []string) (string, error) {
		arrived.Done()
		select {
		case <-all:
			return args[0], nil
		case <-time.After(20 * time.Second):
			return "", errors.New("timeout")
		}
	})
	sock := startServer(t, s)
	var wg sync.WaitGroup
	for i := range n {
		c := dial(t, sock)
		wg.Go(func() {
			c.send(fmt.Sprintf(`{"id":%d,"method":"xvs/barrier","params":["%d"]}`, i, i))
			want := fmt.Sprintf(`{"id":%d,"result":"%d\n","error":null}`, i, i)
			got := make([]byte, len(want))
			c.c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.ReadFull(c.c, got); err != nil || string(got) != want {
				// Not t.Fatal: this is not the test goroutine.
				t.Errorf("client %d: got %q want %q: %v", i, got, want, err)
			}
		})
	}
	wg.Wait()
}

func TestCloseWaitsAndUnblocks(t *testing.T) {
	s := quietServer()
	started := make(chan struct{})
	release := make(chan struct{})
	s.Register("xvs/slow", "", 0, 0, func([]string) (string, error) {
		close(started)
		<-release
		return "done", nil
	})
	sock := filepath.Join(t.TempDir(), "s.ctl")
	if err := s.Listen(sock); err != nil {
		t.Fatal(err)
	}
	idle := dial(t, sock) // an idle connection must not hold Close up
	busy := dial(t, sock)
	busy.send(`{"id":1,"method":"xvs/slow","params":[]}`)
	<-started
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a handler was running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, eof := idle.recv(time.Second); !eof {
		t.Error("idle connection not closed")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Listen(sock); !errors.Is(err, ErrClosed) {
		t.Errorf("Listen after Close: %v, want ErrClosed", err)
	}
}

func TestListenSocketFile(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "x.ctl")

	// A stale socket (its server is gone) is replaced.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s := quietServer()
	if err := s.Listen(sock); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != SocketMode {
		t.Errorf("socket mode %v, want %v", got, SocketMode)
	}
	if err := s.Listen(sock); err == nil {
		t.Error("second Listen succeeded")
	}

	// A live one is not touched.
	s2 := New()
	if err := s2.Listen(sock); !errors.Is(err, ErrInUse) {
		t.Errorf("live socket: %v, want ErrInUse", err)
	}
	s2.Close()
	c := dial(t, sock)
	c.send(`{"id":1,"method":"version","params":[]}`)
	c.expect(`{"id":1,"result":"xvsd (xvs) 0.1.0\n","error":null}`)
	s.Close()

	// Nor is a file that is not a socket.
	file := filepath.Join(dir, "data")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	s3 := New()
	if err := s3.Listen(file); err == nil {
		t.Error("Listen over a regular file succeeded")
	}
	s3.Close()
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep" {
		t.Errorf("regular file damaged: %q, %v", b, err)
	}

	// Close removes only its own socket: one replaced by another
	// server stays.
	s4 := New()
	if err := s4.Listen(sock); err != nil {
		t.Fatal(err)
	}
	os.Remove(sock)
	s5 := New()
	if err := s5.Listen(sock); err != nil {
		t.Fatal(err)
	}
	s4.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("Close removed another server's socket: %v", err)
	}
	s5.Close()
}

// TestWireMatchesOVSDBServer sends the same bytes to the real
// ovsdb-server 3.1 and to our server (with stand-ins for the commands
// used) and requires byte-identical replies, and identical
// connection closes for messages OVS refuses.
func TestWireMatchesOVSDBServer(t *testing.T) {
	server := lookOVS(t, "ovsdb-server")
	tool := lookOVS(t, "ovsdb-tool")
	dir := t.TempDir()
	db := filepath.Join(dir, "conf.db")
	if out, err := exec.Command(tool, "create", db, "../vswitch.ovsschema").CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create: %v\n%s", err, out)
	}
	ref := filepath.Join(dir, "ref.ctl")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, server, "--no-chdir", "--unixctl="+ref,
		"--remote=punix:"+filepath.Join(dir, "db.sock"), "--log-file="+filepath.Join(dir, "log"), db)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", ref); err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("ovsdb-server did not start: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	s := quietServer()
	s.Register("coverage/read-counter", "COUNTER", 1, 1, func([]string) (string, error) {
		return "", errors.New("No such counter")
	})
	s.Register("ovsdb-server/memory-trim-on-compaction", "on|off", 1, 1, func([]string) (string, error) {
		return "", nil
	})
	s.Register("memory/show", "", 0, 0, func([]string) (string, error) { return "", nil })
	ours := startServer(t, s)

	exchange := func(t *testing.T, sock, msg string) (string, bool) {
		c := dial(t, sock)
		c.send(msg)
		return c.recv(300 * time.Millisecond)
	}
	same := []string{
		`{"id":0,"method":"nosuch","params":["a","b"]}`,
		`{"id":"s","method":"version","params":["x"]}`,
		`{"id":[1,"x",{"k":[]}],"method":"memory/show","params":["a"]}`,
		`{"id":1,"method":"ovsdb-server/add-db","params":[]}`,
		`{"id":1,"method":"coverage/read-counter","params":[5]}`,
		`{"id":1,"method":"coverage/read-counter","params":["nosuch"]}`,
		`{"id":1,"method":"coverage/read-counter","params":[]}{"id":2,"method":"list","params":[]}  {"id":3,"method":"memory/show","params":[null]}`,
		`{"id":null,"method":"version","params":[]}`,
		`{"method":"version","params":[]}`,
		`{"id":1,"method":"version"}`,
		`{"id":1,"method":"version","params":{}}`,
		`{"id":1,"method":"version","params":[],"x":1}`,
		`{"id":1,"result":"x","error":null}`,
		`[1]`,
	}
	t.Run("messages", func(t *testing.T) {
		for _, msg := range same {
			t.Run("", func(t *testing.T) {
				t.Parallel()
				want, wantEOF := exchange(t, ref, msg)
				got, gotEOF := exchange(t, ours, msg)
				if got != want || gotEOF != wantEOF {
					t.Errorf("%s\n ovsdb-server: %q (closed %v)\n xvs:          %q (closed %v)", msg, want, wantEOF, got, gotEOF)
				}
			})
		}
	})

	// list-commands: same header and same line layout for the same
	// command and usage, including a name longer than the column.
	refList := runAppctl(t, ref, "list-commands")
	ourList := runAppctl(t, ours, "list-commands")
	for _, line := range []string{
		"The available commands are:",
		"  coverage/read-counter   COUNTER",
		"  ovsdb-server/memory-trim-on-compaction on|off",
		"  memory/show             ",
		"  exit                    ",
		"  list-commands           ",
		"  version                 ",
	} {
		if !strings.Contains(refList.stdout, line+"\n") {
			t.Errorf("ovsdb-server list-commands lacks %q:\n%s", line, refList.stdout)
		}
		if !strings.Contains(ourList.stdout, line+"\n") {
			t.Errorf("our list-commands lacks %q:\n%s", line, ourList.stdout)
		}
	}
	// ovs-appctl's handling of an error reply is the same for both.
	want := failed(ref, `"nosuch" is not a valid command (use "list-commands" to see a list of valid commands)`)
	if got := runAppctl(t, ref, "nosuch"); got != want {
		t.Errorf("ovsdb-server: %#v", got)
	}
}
