// Package polyglot checks that the contract's stubs for other languages work against a real
// gateway server: its test builds the C++ and Java clients in cpp/ and java/ and runs them.
package polyglot
