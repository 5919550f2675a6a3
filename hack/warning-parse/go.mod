// Compares controller.apiwarnings with client-go's Warning header parser.
// Built by hack/build-warning-parse.sh; used by tests/controller/test_apiwarnings.py.
module kfp-operator.invalid/warning-parse

go 1.26.0

require k8s.io/apimachinery v0.36.3

require (
	github.com/go-logr/logr v1.4.3 // indirect
	golang.org/x/net v0.49.0 // indirect
	golang.org/x/text v0.33.0 // indirect
	k8s.io/klog/v2 v2.140.0 // indirect
	k8s.io/utils v0.0.0-20260210185600-b8788abfbbc2 // indirect
)
