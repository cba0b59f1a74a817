// Registration of the "ctxalloc" log type (see detail/log.h).
#include "detail/log.h"

namespace ctxalloc::dpdk {

int log_type() noexcept {
  // A function-local static: the first user registers it, whatever the order in which
  // the library's constructors run. rte_log_register_type_and_pick_level also applies a
  // --log-level already given for "ctxalloc" (an EAL -d plugin loads after EAL parsed it).
  static const int type = [] {
    const int t = rte_log_register_type_and_pick_level("ctxalloc", RTE_LOG_INFO);
    return t >= 0 ? t : static_cast<int>(RTE_LOGTYPE_USER1);
  }();
  return type;
}

namespace {
// Registered at load time so that `--log-level=ctxalloc:debug` finds it.
[[gnu::constructor]] void register_log_type() {
  (void)log_type();
}
}  // namespace

}  // namespace ctxalloc::dpdk
