// Command bexpr-eval evaluates go-bexpr filters the way the Go kfp-operator did, so that the
// Python filter implementation can be compared with it (tests/reconcilers/artifacts).
//
// It reads one JSON object per line on stdin:
//
//	{"filter": "pushed == 1", "data": {"pushed": 1}, "repeat": 1}
//
// and writes one JSON object per input line on stdout:
//
//	{"parsed": true, "parse_error": "", "evaluated": true, "eval_error": "", "result": true,
//	 "panicked": false, "outcomes": ["true"], "regex_errors": []}
//
// "data" is decoded with encoding/json into a map[string]interface{}, exactly as the reference
// operator's webhook decodes an artifact's metadata (so every number is a float64), and the filter
// is parsed with bexpr.CreateEvaluator and evaluated with Evaluate, as the reference does.
// "repeat" evaluates the filter that many times: go-bexpr walks maps in Go's random map order,
// so a filter whose answer depends on that order shows several distinct "outcomes"
// ("true", "false", "error" or "panic"). The other fields describe the first evaluation.
// "regex_errors" lists the regular expressions of the filter's matches operators that Go's regexp
// refuses (go-bexpr compiles them only when it evaluates them).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"

	"github.com/hashicorp/go-bexpr"
	"github.com/hashicorp/go-bexpr/grammar"
)

type input struct {
	Filter *string         `json:"filter"`
	Data   json.RawMessage `json:"data"`
	Repeat int             `json:"repeat"`
}

type output struct {
	Parsed     bool     `json:"parsed"`
	ParseError string   `json:"parse_error"`
	Evaluated  bool     `json:"evaluated"`
	EvalError  string   `json:"eval_error"`
	Result     bool     `json:"result"`
	Panicked   bool     `json:"panicked"`
	Outcomes   []string `json:"outcomes"`
	RegexErrs  []string `json:"regex_errors"`
	InputError string   `json:"input_error,omitempty"`
}

type evaluation struct {
	result   bool
	err      error
	panicked bool
}

func (e evaluation) outcome() string {
	switch {
	case e.panicked:
		return "panic"
	case e.err != nil:
		return "error"
	case e.result:
		return "true"
	default:
		return "false"
	}
}

func evaluate(evaluator *bexpr.Evaluator, data map[string]interface{}) (e evaluation) {
	defer func() {
		if recovered := recover(); recovered != nil {
			e = evaluation{err: fmt.Errorf("panic: %v", recovered), panicked: true}
		}
	}()
	result, err := evaluator.Evaluate(data)
	return evaluation{result: result, err: err}
}

// regexErrors compiles the patterns of the filter's matches operators as go-bexpr would.
func regexErrors(filter string) []string {
	errs := []string{}
	ast, err := grammar.Parse("", []byte(filter), grammar.MaxExpressions(2000000))
	if err != nil {
		return errs
	}
	var walk func(grammar.Expression)
	walk = func(node grammar.Expression) {
		switch node := node.(type) {
		case *grammar.UnaryExpression:
			walk(node.Operand)
		case *grammar.BinaryExpression:
			walk(node.Left)
			walk(node.Right)
		case *grammar.CollectionExpression:
			walk(node.Inner)
		case *grammar.MatchExpression:
			if node.Operator == grammar.MatchMatches || node.Operator == grammar.MatchNotMatches {
				if _, err := regexp.Compile(node.Value.Raw); err != nil {
					errs = append(errs, err.Error())
				}
			}
		}
	}
	walk(ast.(grammar.Expression))
	return errs
}

func process(line []byte) output {
	var in input
	if err := json.Unmarshal(line, &in); err != nil {
		return output{InputError: err.Error()}
	}
	if in.Filter == nil {
		return output{InputError: `missing "filter"`}
	}
	var data map[string]interface{}
	if len(in.Data) > 0 {
		if err := json.Unmarshal(in.Data, &data); err != nil {
			return output{InputError: "data: " + err.Error()}
		}
	}
	if data == nil {
		data = map[string]interface{}{}
	}

	evaluator, err := bexpr.CreateEvaluator(*in.Filter)
	if err != nil {
		return output{ParseError: err.Error(), Outcomes: []string{}, RegexErrs: []string{}}
	}
	out := output{Parsed: true, RegexErrs: regexErrors(*in.Filter)}
	repeat := in.Repeat
	if repeat < 1 {
		repeat = 1
	}
	seen := map[string]bool{}
	for i := 0; i < repeat; i++ {
		e := evaluate(evaluator, data)
		if i == 0 {
			out.Evaluated = e.err == nil
			if e.err != nil {
				out.EvalError = e.err.Error()
			}
			out.Result = e.result
			out.Panicked = e.panicked
		}
		seen[e.outcome()] = true
	}
	for outcome := range seen {
		out.Outcomes = append(out.Outcomes, outcome)
	}
	sort.Strings(out.Outcomes)
	return out
}

func main() {
	reader := bufio.NewReaderSize(os.Stdin, 1<<20)
	writer := bufio.NewWriter(os.Stdout)
	defer writer.Flush()
	encoder := json.NewEncoder(writer)
	encoder.SetEscapeHTML(false)
	for {
		line, err := reader.ReadBytes('\n')
		if len(line) > 0 && !(len(line) == 1 && line[0] == '\n') {
			if encodeErr := encoder.Encode(process(line)); encodeErr != nil {
				fmt.Fprintln(os.Stderr, encodeErr)
				os.Exit(1)
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
