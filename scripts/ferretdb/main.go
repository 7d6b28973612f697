// Command ferretdb runs FerretDB 1.24 (the MongoDB wire protocol on SQLite)
// for iotflowd's tests: scripts/services.sh builds and starts it. It embeds
// FerretDB's library rather than installing cmd/ferretdb, whose module build
// panics at start-up (it ships an empty version file).
//
//	ferretdb -listen 127.0.0.1:57017 -data DIR
//
// Telemetry is off (the embedded library never reports; DO_NOT_TRACK says
// so again), it keeps no state file, and it logs errors as
// text to stderr (services.sh sends that to a file). SIGINT/SIGTERM stop it.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:57017", "TCP address to listen on")
	data := flag.String("data", "", "directory of the SQLite files (one per database)")
	flag.Parse()
	if *data == "" {
		log.Fatal("ferretdb: -data DIR is required")
	}
	dir, err := filepath.Abs(*data)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		log.Fatal(err)
	}
	os.Setenv("DO_NOT_TRACK", "1")

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("ferretdb listening on %s, data in %s", *listen, dir)
	f.Run(ctx)
	log.Print("ferretdb stopped")
}
