// Command echo-client is the standalone hostlab echo client; see package echo.
package main

import (
	"os"

	"github.com/hostlab/hostlab/echo"
)

func main() { os.Exit(echo.ClientMain(os.Args[1:])) }
