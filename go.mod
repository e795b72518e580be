module github.com/eventgate/eventgate

go 1.26
