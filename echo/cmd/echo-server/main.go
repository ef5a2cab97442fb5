// Command echo-server is the standalone hostlab echo server; see package echo.
package main

import (
	"os"

	"github.com/hostlab/hostlab/echo"
)

func main() { os.Exit(echo.ServerMain(os.Args[1:])) }
