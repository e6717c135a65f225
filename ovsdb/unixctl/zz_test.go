package unixctl
import ("testing";"net";"time")
func TestZZRaw(t *testing.T){
 s:=newTestServer(); sock:=startServer(t,s)
 c,_:=net.Dial("unix",sock); c.Write([]byte(`{"id":0,"method":"foo","params":[]}`))
 c.SetReadDeadline(time.Now().Add(time.Second)); b:=make([]byte,1000); n,_:=c.Read(b); t.Logf("%s", b[:n])
}
