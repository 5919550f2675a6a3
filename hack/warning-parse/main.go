// Parses Warning header values with client-go's own parser (k8s.io/apimachinery util/net).
// Built by hack/build-warning-parse.sh; used by tests/controller/test_apiwarnings.py.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Reads one JSON array of header values per line and prints, per line, the JSON array of the
// texts of their warn-code 299 warnings, as client-go's REST client keeps them.
func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var values []string
		if err := json.Unmarshal(in.Bytes(), &values); err != nil {
			panic(err)
		}
		warnings, _ := utilnet.ParseWarningHeaders(values)
		texts := []string{}
		for _, w := range warnings {
			if w.Code == 299 {
				texts = append(texts, w.Text)
			}
		}
		out, _ := json.Marshal(texts)
		fmt.Println(string(out))
	}
}
