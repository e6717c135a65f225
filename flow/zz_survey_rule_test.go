package flow
import ("testing";"os";"strings";"fmt")
func TestSurvey(t *testing.T){
  b,_ := os.ReadFile("/tmp/xvsrule/ovsflows2.txt")
  reasons := map[string]int{}
  for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
    _, err := ParseFlow(l, func(s string)(uint32,bool){return 5,true})
    if err == nil { continue }
    msg := err.Error()
    if strings.HasPrefix(msg, "unknown") { reasons[msg]++ }
  }
  for k, v := range reasons { fmt.Println(v, k) }
}
