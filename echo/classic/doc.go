// Package classic builds hostlab's C echo pair: a forking echo server and a
// str_cli client that, unlike a Go program, can be killed by SIGPIPE (UNP
// 5.12-5.16). The sources are embedded, so Build works from any directory.
package classic
