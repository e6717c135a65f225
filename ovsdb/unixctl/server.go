package unixctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
)

// Handler runs one command. args are the command's arguments, without
// the command name; the slice is the handler's to keep. The returned text
// is the command's output; a non-nil error makes the command fail with
// err.Error() as the error text (ovs-appctl prints it to stderr and exits
// with status 2) and the text is ignored. Texts need no trailing newline:
// one is added to non-empty texts, as OVS does.
//
// Handlers for different connections may run concurrently; requests on
// one connection run one at a time, in order.
type Handler func(args []string) (string, error)

var (
	// ErrInUse reports that another process answers on the socket path.
	ErrInUse = errors.New("unixctl: socket in use by a running server")
	// ErrClosed reports a Listen on a closed server.
	ErrClosed = errors.New("unixctl: server closed")
)

type command struct {
	usage            string
	minArgs, maxArgs int
	h                Handler
	exit             bool // the built-in "exit": run onExit after replying
}

// Server is a unixctl server. Create it with New, register commands, then
// Listen. All methods are safe for concurrent use; commands may be
// registered before or after Listen.
type Server struct {
	mu       sync.Mutex // protects the fields below
	cmds     map[string]*command
	version  string
	onExit   func()
	log      *slog.Logger
	ln       *net.UnixListener
	path     string
	sockInfo os.FileInfo
	conns    map[net.Conn]struct{}
	closed   bool

	wg      sync.WaitGroup // accept loop and connection goroutines
	limiter rateLimit      // protocol-error warnings
}

// New returns a server with the built-in commands of OVS's unixctl:
// list-commands, version and exit (which replies, then calls the function
// set with OnExit).
func New() *Server {
	s := &Server{
		cmds:    make(map[string]*command),
		version: filepath.Base(os.Args[0]) + " (xvs)",
		conns:   make(map[net.Conn]struct{}),
	}
	s.Register("list-commands", "", 0, 0, s.listCommands)
	s.Register("version", "", 0, 0, func([]string) (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.version, nil
	})
	s.Register("exit", "", 0, 0, func([]string) (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.onExit == nil {
			return "", errors.New(`"exit" is not supported by this daemon`)
		}
		return "", nil
	})
	s.cmds["exit"].exit = true
	return s
}

// Register adds command name. usage is shown by list-commands after the
// name (e.g. "[BRIDGE]"); the command accepts between minArgs and maxArgs
// arguments, and other counts fail with OVS's messages before h is
// called. Registering an existing name, including a built-in, replaces
// it. Register panics on an empty name, a nil handler or an invalid
// argument range: those are programming errors.
func (s *Server) Register(name, usage string, minArgs, maxArgs int, h Handler) {
	if name == "" || h == nil || minArgs < 0 || maxArgs < minArgs {
		panic(fmt.Sprintf("unixctl: invalid registration of %q (args %d..%d, handler set: %t)",
			name, minArgs, maxArgs, h != nil))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds[name] = &command{usage: usage, minArgs: minArgs, maxArgs: maxArgs, h: h}
}

// SetVersion sets the text of the "version" command, e.g.
// "xvsd (xvs) 0.1.0". The default is the program name followed by " (xvs)".
func (s *Server) SetVersion(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version = v
}

// OnExit sets the function the built-in "exit" command calls. It runs in
// its own goroutine after the reply has been written, so it may call
// Close. Until it is set, "exit" fails.
func (s *Server) OnExit(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onExit = f
}

// SetLogger sets the logger for connection-level problems (malformed
// messages, accept errors, handler panics). The default is slog.Default().
// Warnings about peers are rate-limited.
func (s *Server) SetLogger(l *slog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = l
}

func (s *Server) logger() *slog.Logger {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return slog.Default()
	}
	return s.log
}

// Listen creates the control socket at path and serves it in background
// goroutines until Close. A relative path is made absolute. A stale
// socket (one nobody answers on) is replaced; a live one makes Listen
// fail with ErrInUse, and a file that is not a socket is never removed.
// The socket gets SocketMode. A server listens at most once.
func (s *Server) Listen(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("unixctl: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.ln != nil {
		return fmt.Errorf("unixctl: already listening on %s", s.path)
	}
	ln, fi, err := listenUnix(abs)
	if err != nil {
		return fmt.Errorf("unixctl: listen %s: %w", abs, err)
	}
	s.ln, s.path, s.sockInfo = ln, abs, fi
	s.wg.Add(1)
	go s.accept(ln)
	return nil
}

// Close stops the server: it closes the listener, removes the socket file
// it created, closes every connection and waits for the connection
// goroutines, including handlers still running, to return. Close is
// idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
		removeOwn(s.path, s.sockInfo)
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("unixctl: close: %w", err)
	}
	return nil
}

func (s *Server) accept(ln *net.UnixListener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: wait and retry, as
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if s.limiter.allow() {
				s.logger().Warn("unixctl: accept failed", "err", err, "retry_in", backoff)
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// serve reads requests from one connection and answers each before
// reading the next, as OVS does. Any protocol error closes the connection.
func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	f := newFramer(c, MaxMessageSize)
	var req request
	var out []byte
	for {
		msg, err := f.next()
		if err == nil {
			err = decodeRequest(msg, &req)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && s.limiter.allow() {
				s.logger().Warn("unixctl: closing connection", "err", err)
			}
			return
		}
		text, cmd, cerr := s.dispatch(&req)
		if cerr != nil {
			text = cerr.Error()
		}
		out = appendReply(out[:0], req.id, text, cerr != nil)
		if _, err := c.Write(out); err != nil {
			return
		}
		if cmd != nil && cmd.exit && cerr == nil {
			s.mu.Lock()
			fn := s.onExit
			s.mu.Unlock()
			if fn != nil {
				go fn()
			}
		}
	}
}

// dispatch runs one request. Its checks and their wording follow OVS's
// process_command: unknown command, too few arguments, too many
// arguments, then non-string arguments.
func (s *Server) dispatch(req *request) (string, *command, error) {
	s.mu.Lock()
	cmd := s.cmds[req.method]
	s.mu.Unlock()
	n := len(req.params)
	switch {
	case cmd == nil:
		return "", nil, fmt.Errorf(`"%s" is not a valid command (use "list-commands" to see a list of valid commands)`, req.method)
	case n < cmd.minArgs:
		return "", cmd, fmt.Errorf(`"%s" command requires at least %d arguments`, req.method, cmd.minArgs)
	case n > cmd.maxArgs:
		return "", cmd, fmt.Errorf(`"%s" command takes at most %d arguments`, req.method, cmd.maxArgs)
	}
	args := make([]string, n)
	for i, p := range req.params {
		if len(p) == 0 || p[0] != '"' || json.Unmarshal(p, &args[i]) != nil {
			return "", cmd, fmt.Errorf(`"%s" command has non-string argument`, req.method)
		}
	}
	text, err := s.call(req.method, cmd.h, args)
	return text, cmd, err
}

// call runs h, turning a panic into a failed command so that one broken
// handler cannot take the daemon down through its management socket.
func (s *Server) call(name string, h Handler, args []string) (text string, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.logger().Error("unixctl: command handler panicked",
				"command", name, "panic", p, "stack", string(debug.Stack()))
			text, err = "", fmt.Errorf(`"%s" command failed: internal error`, name)
		}
	}()
	text, err = h(args)
	if err != nil {
		return "", err
	}
	return text, nil
}

func (s *Server) listCommands([]string) (string, error) {
	s.mu.Lock()
	names := slices.Sorted(maps.Keys(s.cmds))
	var b strings.Builder
	b.WriteString("The available commands are:\n")
	for _, name := range names {
		fmt.Fprintf(&b, "  %-23s %s\n", name, s.cmds[name].usage)
	}
	s.mu.Unlock()
	return b.String(), nil
}

// rateLimit allows a burst of events per interval; it keeps a noisy peer
// from flooding the log.
type rateLimit struct {
	mu    sync.Mutex
	start time.Time
	n     int
}

const (
	rateBurst    = 5
	rateInterval = 5 * time.Second
)

func (r *rateLimit) allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.start) > rateInterval {
		r.start, r.n = now, 0
	}
	r.n++
	return r.n <= rateBurst
}
