module disagg-operator/test/node/pause

go 1.26.0
