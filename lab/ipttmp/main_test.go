package ipt
import ("testing";"context";"time";"xvs/lab")
func TestX(t *testing.T){
 a,_:=lab.OpenNS("xvspair-h1"); b,_:=lab.OpenNS("xvspair-h2")
 st:=time.Now()
 r,err:=lab.Iperf(context.Background(),a,b,"198.18.0.2",3*time.Second,false)
 t.Log(r,err,time.Since(st))
 r,err=lab.Iperf(context.Background(),a,b,"198.18.0.2",2*time.Second,true)
 t.Log(r,err,time.Since(st))
}
