// ctxfwd: l2fwd-style forwarding with a flow table and per-flow memory contexts.
//   ctxfwd [EAL options] -- [options]        (ctxfwd -- --help; docs/ctxfwd.md)
// Exit status: 0 done, 1 run-time failure, 2 bad command line.
#include "app.h"

int main(int argc, char** argv) {
  return ctxfwd::run_app(argc, argv);
}
